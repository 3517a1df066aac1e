"""`mlops run PIPELINE --env ENV --local`: run the compiled pipeline on this machine.

It runs exactly what `mlops compile` wrote into the overlay (the IR inside the
PipelineVersion), with kfp.local's DockerRunner on the pinned images, then
collects the `model` and `metrics` outputs where the promotion gates read them.
Each run is also recorded, once and for good, in `.mlops/runs/<run-id>.json`
(`mlops runs list`, `mlops runs compare`, `mlops promote --metrics RUN_ID`).
With MLflow tracking configured, the run is logged there first (params,
metrics, tags, its model registered as a version) and the record keeps
MLflow's ids; MLflow out of reach is one warning line, never a failed run.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops import config as cfg
from mlops import pipelines as pl
from mlops.adapters import kfpc, safeyaml
from mlops.atomicfile import write_json_atomic
from mlops.commands import Context
from mlops.core import runs
from mlops.errors import ConfigError, MlopsError, UsageError
from mlops.records import dataclass, field, replace
from mlops.services import runstore, tracking
from mlops.services.envdir import EnvDir, environment
from mlops.services.evidence import read_run_metrics

RUNS_DIR = runstore.RUNS_DIR
PARAM_TYPES = {"NUMBER_DOUBLE": float, "NUMBER_INTEGER": int, "STRING": str}


@dataclass(frozen=True)
class RunOptions:
    pipeline: str
    env: str
    local: bool = True
    output_dir: Path | None = None
    params: Mapping[str, str] = field(default_factory=dict)


def run(ctx: Context, opts: RunOptions) -> int:
    if not opts.local:
        raise UsageError("only local runs are supported: pass --local")
    config = cfg.load_config(ctx.root, ctx.environ)
    env = environment(config, opts.env)
    name = pl.from_argument(opts.pipeline)
    rel = EnvDir(ctx.root, env.name).pipeline_output(name)
    docs = _compiled(ctx.root, rel, env.name, name)
    version = pl.version_of(docs)
    pl.check_images(docs, rel, env.name, env.require_digest)
    spec = version["spec"]["pipelineSpec"]
    arguments = _arguments(spec, opts.params)
    started = runstore.start()
    # Each run its own folder by default, so a later run never replaces the model an
    # earlier run's record points to.
    out_dir = (opts.output_dir or ctx.root / RUNS_DIR / started.id).resolve()
    ctx.out.note(f"running {rel} ({version['metadata']['name']}) locally; outputs in {out_dir}")
    outputs = kfpc.run_local(spec, out_dir / "artifacts", arguments)
    record = _collect(outputs, out_dir, env.name, opts.pipeline, version, spec, arguments)
    recorded, mirrored = _record_run(ctx.root, config.tracking, started, record, spec)
    record["run_id"] = recorded.id
    if mirrored is not None:
        record["tracking"] = mirrored.dump()
        warning = mirrored.warning(f"run {recorded.id}")
        if warning:
            ctx.out.note(warning)
    write_json_atomic(out_dir / "run.json", record)
    _report(ctx, record)
    return 0


def _record_run(root: Path, tracked: cfg.Tracking, started: runstore.Started, record: dict,
                spec) -> tuple[runs.RunRecord, tracking.Mirrored | None]:
    """The run's immutable record (parameters with the pipeline's defaults filled in),
    logged to MLflow first when tracking is on, so that the record keeps MLflow's ids."""
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    run = runstore.finish(
        root, started, pipeline=record["pipeline"], env=record["env"],
        version=record["version"], images=runs.step_images(record["images"]),
        parameters=runs.effective_parameters(declared, record["parameters"]),
        metrics=record["metrics"], model_uri=record.get("model_uri"))
    mirrored = tracking.log_run(tracked, run)
    if mirrored is not None and mirrored.ok:
        run = replace(run, mlflow={k: str(v) for k, v in mirrored.detail.items()
                                   if k in ("experiment_id", "run_id", "model", "version")})
    return runstore.write(root, run), mirrored


def _compiled(root: Path, rel: str, env: str, name: str) -> list[dict[str, Any]]:
    try:
        text = safeyaml.read_text(root / rel, rel)
    except FileNotFoundError:
        known = pl.known_pipelines(root)
        if name not in known:  # compiling would not help: there is no such pipeline
            raise UsageError(f"unknown pipeline {name!r} (known: "
                             f"{', '.join(sorted(known)) or 'none'})") from None
        raise ConfigError(
            f"{rel}: not compiled for environment {env}; run `mlops compile --env {env}` first"
        ) from None
    return pl.parse_rendered(text)


def _arguments(spec: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    arguments: dict[str, Any] = {}
    for key, raw in params.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise UsageError(f"unknown pipeline parameter {key!r} (parameters: {known})")
        kind = declared[key].get("parameterType", "STRING")
        arguments[key] = _cast(key, raw, kind)
    return arguments


def _cast(key: str, raw: str, kind: str) -> Any:
    if kind == "BOOLEAN":
        if raw.lower() not in ("true", "false"):
            raise UsageError(f"parameter {key} takes true or false, got {raw!r}")
        return raw.lower() == "true"
    try:
        return PARAM_TYPES.get(kind, str)(raw)
    except ValueError:
        raise UsageError(f"parameter {key} takes a {kind.lower()}, got {raw!r}") from None


def _collect(outputs, out_dir: Path, env: str, name: str, version, spec, arguments) -> dict:
    metrics_art, model_art = outputs.get("metrics"), outputs.get("model")
    if metrics_art is None:
        raise MlopsError(f"pipeline {name} has no output named 'metrics'")
    metrics = read_run_metrics(kfpc.artifact_path(metrics_art))
    write_json_atomic(out_dir / "metrics.json", metrics)
    record: dict[str, Any] = {
        "pipeline": name,
        "env": env,
        "version": version["metadata"]["name"],
        "images": pl.executor_images(spec),
        "parameters": arguments,
        "metrics": metrics,
        "metrics_file": str(out_dir / "metrics.json"),
    }
    if model_art is not None:
        model = _copy_model(kfpc.artifact_path(model_art), out_dir / "model")
        record["model_uri"] = model.as_uri()
    return record


def _copy_model(source: Path | None, target_dir: Path) -> Path:
    if source is None or not source.exists():
        raise MlopsError("the pipeline's model output holds no file")
    if target_dir.exists():
        shutil.rmtree(target_dir)
    target_dir.mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, target_dir, dirs_exist_ok=True)
        return target_dir
    target = target_dir / "model.joblib"
    shutil.copy2(source, target)
    return target_dir


def _report(ctx: Context, record: dict) -> None:
    lines = [f"{record['pipeline']} ({record['version']}) on {record['env']}:"]
    lines += [f"  {k:<10} {v:.4f}" for k, v in sorted(record["metrics"].items())]
    lines.append(f"metrics: {record['metrics_file']}")
    lines.append(f"run:     {record['run_id']} ({RUNS_DIR}/{record['run_id']}.json)")
    if "model_uri" in record:
        lines.append(f"model:   {record['model_uri']}")
    logged = record.get("tracking")
    if logged and logged["ok"]:
        version = f", model {logged['model']} version {logged['version']}" \
            if "version" in logged else ""
        lines.append(f"mlflow:  run {logged['run_id']}{version}")
    ctx.out.result(record, "\n".join(lines))
