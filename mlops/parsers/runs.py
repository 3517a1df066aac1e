"""`mlops runs list|compare`: the pipeline runs recorded under `.mlops/runs/`."""

from __future__ import annotations

import argparse

from mlops.parsers import Subcommands, add, common

RUNS_HELP = """\
Every `mlops run` records its run in .mlops/runs/<run-id>.json (local to this
clone; git ignores it): the pipeline, environment and PipelineVersion, the
images, the parameters (defaults included), the metrics, the start time and
duration, the model URI and the source commit. A run id looks like
20250101T120000-1a2b3c (its UTC start time, then 6 random hex digits).
`mlops promote --metrics RUN_ID` takes a run's metrics as evidence.
"""

LIST_HELP = """\
One line per recorded run, newest first: id, pipeline, environment, start
(UTC), duration and the first metrics. --json gives every field of each record.
"""

COMPARE_HELP = """\
A table with one column per run, in the order given: each run's pipeline,
environment, PipelineVersion, start, duration, model URI and source commit,
then its parameters, metrics and images (step -> image digest). A row whose
values differ starts with '*'; '-' marks a value a run does not have. --json
gives the same rows, each with "values" (one per run) and "differs", and the
whole records. An unknown run id exits 2, a corrupt record 1.
"""


def _run_id(text: str) -> str:
    from mlops.core.runs import is_id

    if not is_id(text):
        raise argparse.ArgumentTypeError(f"expected a run id like 20250101T120000-1a2b3c, "
                                          f"got {text!r}")
    return text


def _add_list(verbs) -> None:
    p = add(verbs, "list", help="the recorded runs, newest first",
            description=LIST_HELP)
    p.add_argument("--pipeline", metavar="NAME", help="only runs of this pipeline")
    p.add_argument("--env", metavar="ENV", help="only runs in this environment")
    common(p)
    p.set_defaults(handler=_run_list)


def _add_compare(verbs) -> None:
    p = add(verbs, "compare", help="parameters, metrics and images of runs side by side",
            description=COMPARE_HELP)
    p.add_argument("run_ids", metavar="RUN", nargs="+", type=_run_id,
                   help="run ids (at least two), from `mlops runs list`")
    common(p)
    p.set_defaults(handler=_run_compare)


def _run_list(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.runs import ListOptions, list_runs

    return list_runs(ctx, ListOptions(pipeline=args.pipeline, env=args.env))


def _run_compare(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.runs import CompareOptions, compare_runs

    return compare_runs(ctx, CompareOptions(run_ids=tuple(args.run_ids)))


def register(sub: Subcommands) -> None:
    sub.lazy("runs", "recorded pipeline runs: list them, compare parameters and metrics",
             _add_runs)


def _add_runs(sub: Subcommands) -> None:
    p = add(sub, "runs", description="The pipeline runs `mlops run` recorded, listed or "
            "compared side by side.\n\n" + RUNS_HELP)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=type(p), required=True)
    _add_list(verbs)
    _add_compare(verbs)
