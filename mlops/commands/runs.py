"""`mlops runs list` and `mlops runs compare`: recorded pipeline runs, side by side."""

from __future__ import annotations

from mlops import config as cfg
from mlops import pipelines as pl
from mlops.commands import Context
from mlops.core import runs
from mlops.errors import UsageError
from mlops.records import dataclass
from mlops.services import runstore


@dataclass(frozen=True)
class ListOptions:
    pipeline: str | None = None
    env: str | None = None


@dataclass(frozen=True)
class CompareOptions:
    run_ids: tuple[str, ...]


def list_runs(ctx: Context, opts: ListOptions) -> int:
    if opts.env is not None:  # an environment is configured: a typo is exit 2, not "no runs"
        cfg.environment_arg(cfg.load_config(ctx.root, ctx.environ), opts.env)
    records = runstore.all_runs(ctx.root)
    pipeline = None if opts.pipeline is None else _known_pipeline(ctx, opts.pipeline, records)
    found = runs.select(records, pipeline, opts.env)
    doc = {"pipeline": pipeline, "env": opts.env, "runs": [r.dump() for r in found]}
    ctx.out.result(doc, runs.format_list(found))
    return 0


def _known_pipeline(ctx: Context, name: str, records: list[runs.RunRecord]) -> str:
    """PIPELINE as `mlops run` names it; a typo is exit 2, not "no runs".

    A pipeline whose file is gone still has its recorded runs listed.
    """
    resource = pl.from_argument(name)
    known = pl.known_pipelines(ctx.root) | {runs.same_pipeline(r.pipeline) for r in records}
    if resource not in known:
        raise UsageError(f"unknown pipeline {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    return resource


def compare_runs(ctx: Context, opts: CompareOptions) -> int:
    if len(opts.run_ids) < 2:
        raise UsageError("runs compare needs at least two run ids (`mlops runs list`)")
    records = [runstore.read(ctx.root, run_id) for run_id in opts.run_ids]
    doc = {**runs.comparison_document(records), "records": [r.dump() for r in records]}
    ctx.out.result(doc, runs.format_compare(records))
    return 0
