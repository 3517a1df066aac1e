"""Evaluation metrics as files: the one reader, for `promote --metrics`, `approve --metrics`
and the metrics a pipeline run outputs.

`--metrics` names a file, or a run recorded under `.mlops/runs/` by its id
(`mlops runs list`): a value that is no file but reads as a run id is that
run's metrics. Either way a missing or unreadable one is a failed gate.

One policy for all of them: a flat JSON object of metric name to number,
read with `safejson`'s limits. NaN and infinities parse (JSON as Python
writes it has them); whether they are acceptable is the caller's `finite`.
A promotion accepts them so that its gates fail closed with the reason
("accuracy is NaN", exit 3); a pipeline run refuses to record them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from mlops import safejson
from mlops.core import runs
from mlops.errors import GateFailed, MlopsError
from mlops.services import runstore

MAX_METRICS_BYTES = 1 << 20


def read_metrics(value: Path, root: Path) -> dict[str, float]:
    """`--metrics FILE|RUN_ID`, failing closed (exit 3): a file's metrics, or those of the
    run recorded under `root`'s `.mlops/runs/` with that id."""
    if value.exists() or not runs.is_id(str(value)):
        return read_metrics_file(value)
    try:
        run = runstore.find(root, str(value))
    except runs.CorruptRun as exc:
        raise GateFailed(f"--metrics {value}: {exc.message}") from None
    if run is None:
        raise GateFailed(f"--metrics {value}: no metrics file {value} and no run {value} "
                         f"recorded under {runstore.RUNS_DIR}/ (`mlops runs list`)")
    if not run.metrics:
        raise GateFailed(f"--metrics {value}: run {value} recorded no metrics")
    return dict(run.metrics)


def read_metrics_file(path: Path) -> dict[str, float]:
    """`--metrics FILE`, failing closed: an unreadable file is a failed gate (exit 3)."""
    def fail(why: str) -> GateFailed:
        return GateFailed(f"metrics file {path}{why}")

    try:
        data = safejson.read(path, max_bytes=MAX_METRICS_BYTES)
    except safejson.NotFound:
        raise fail(f" not found (nor is it a run id recorded under {runstore.RUNS_DIR}/)") from None
    except safejson.JsonProblem as exc:
        raise fail(f" is unreadable: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise fail(" must be a non-empty JSON object of numbers")
    return metrics_from(data, lambda key: fail(f": {key!r} is not a number"), finite=False)


def read_run_metrics(path: Path | None) -> dict[str, float]:
    """A pipeline run's metrics output: finite numbers only, or a clear error (exit 1)."""
    if path is None or not path.is_file():
        raise MlopsError("the pipeline's metrics output holds no file")
    try:
        data = safejson.read(path, max_bytes=MAX_METRICS_BYTES)
    except safejson.JsonProblem as exc:
        raise MlopsError(f"metrics output is not JSON: {exc}") from None
    shape = MlopsError("metrics output must be a flat JSON object of finite numbers")
    if not isinstance(data, dict):
        raise shape
    return metrics_from(data, lambda key: shape, finite=True)


def metrics_from(data: dict, error: Callable[[str], MlopsError], finite: bool) -> dict[str, float]:
    """Name -> float; `error(key)` for a value that is not a (finite, if asked) number."""
    metrics = {}
    for key, value in data.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (finite and not math.isfinite(value)):
            raise error(key)
        metrics[str(key)] = float(value)
    return metrics
