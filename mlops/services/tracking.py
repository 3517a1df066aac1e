"""MLflow, where a team uses it: runs logged to it, promotions mirrored as model aliases.

On only with a tracking URI (`tracking.uri` in mlops.yaml, or $MLFLOW_TRACKING_URI);
otherwise these functions return None and the mlflow client is never imported.

Git is the source of truth and MLflow mirrors it. `mlops run` logs a run after it
finished and before its record is written (the record keeps MLflow's ids); a
promotion sets the alias named after the environment only after its commit
landed. When MLflow cannot be reached, or refuses, the run or the promotion
stands: the caller prints one warning line and reports `{"ok": false, "error"}`,
and the exit code is that of the run or promotion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from mlops import config as cfg
from mlops.adapters.tracking import ModelVersion, RunLog, Tracker, TrackingError
from mlops.core.runs import RunRecord
from mlops.records import dataclass, field
from mlops.release import Release

TAG_RUN_ID = "mlops.run_id"
TAG_MODEL_URI = "mlops.model_uri"
TAG_PIPELINE = "mlops.pipeline"
TAG_PIPELINE_VERSION = "mlops.pipeline_version"
TAG_ENV = "mlops.env"
TAG_COMMIT = "mlops.source_commit"
TAG_IMAGE = "mlops.image."  # + step
GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own: its UI links the commit

Connect = Callable[[str], Tracker]


@dataclass(frozen=True)
class Mirrored:
    """What MLflow was told, or why it was not: `dump()` is the JSON output's `tracking`."""

    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def dump(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.detail, **({"error": self.error} if self.error else {})}

    def warning(self, what: str) -> str | None:
        """The one stderr line when MLflow did not get `what`."""
        return None if self.ok else f"warning: MLflow not updated ({what}): {self.error}"

    def alias_line(self) -> str:
        """The human output's line for an alias that was set, else ''."""
        if not self.ok or "models" not in self.detail:
            return ""
        versions = ", ".join(f"{m['name']} version {m['version']}" for m in self.detail["models"])
        return f"\n  mlflow: alias {self.detail['alias']} -> {versions}"


# -- mlops run --------------------------------------------------------------------------

def log_run(tracking: cfg.Tracking, record: RunRecord,
            connect: Connect = Tracker) -> Mirrored | None:
    """Log a finished run (params, metrics, tags) and register its model as a new version."""
    if not tracking.enabled:
        return None
    tracker = connect(str(tracking.uri))
    try:
        experiment_id, run_id = tracker.log_run(run_log(tracking, record))
        ids = {"experiment_id": experiment_id, "run_id": run_id}
        if record.model_uri is None:
            return Mirrored(True, ids)
        version = tracker.register(tracking.model_for(record.pipeline), record.model_uri,
                                   run_id, version_tags(record))
    except TrackingError as exc:
        return Mirrored(False, error=exc.message)
    return Mirrored(True, {**ids, "model": version.name, "version": version.version,
                           "source": version.source})


def run_log(tracking: cfg.Tracking, record: RunRecord) -> RunLog:
    return RunLog(
        experiment=tracking.experiment_for(record.pipeline), name=record.id,
        params={k: _param(v) for k, v in record.parameters.items()},
        metrics=dict(record.metrics), tags=run_tags(record),
        start_ms=_ms(record.started),
        end_ms=_ms(record.started) + int(record.duration_s * 1000))


def run_tags(record: RunRecord) -> dict[str, str]:
    tags = {TAG_RUN_ID: record.id, TAG_PIPELINE: record.pipeline, TAG_ENV: record.env,
            TAG_PIPELINE_VERSION: record.version}
    if record.source_commit:
        tags |= {TAG_COMMIT: record.source_commit, GIT_COMMIT: record.source_commit}
    if record.model_uri:
        tags[TAG_MODEL_URI] = record.model_uri
    return tags | {f"{TAG_IMAGE}{step}": image for step, image in record.images.items()}


def version_tags(record: RunRecord) -> dict[str, str]:
    tags = {TAG_RUN_ID: record.id, TAG_MODEL_URI: str(record.model_uri),
            TAG_PIPELINE_VERSION: record.version}
    return tags | ({TAG_COMMIT: record.source_commit} if record.source_commit else {})


def _param(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# -- promotions -------------------------------------------------------------------------

def mirror_promotion(tracking: cfg.Tracking, env: str, release: Release,
                     connect: Connect = Tracker) -> Mirrored | None:
    """After the commit landed: alias `env` on the model version of the release's model URI
    (the newest version with that URI, per registered model)."""
    if not tracking.enabled:
        return None
    if release.model_uri is None:
        return Mirrored(True, {"alias": env, "skipped": "the release has no model URI"})
    tracker = connect(str(tracking.uri))
    try:
        found = tracker.versions_tagged(TAG_MODEL_URI, release.model_uri, tracking.model)
        if not found:
            return Mirrored(False, {"alias": env}, f"no model version in MLflow has "
                            f"{TAG_MODEL_URI}={release.model_uri} (a run logged with tracking "
                            "on registers one)")
        chosen = _newest_per_model(found)
        for version in chosen:
            tracker.set_alias(version.name, env, version.version)
    except TrackingError as exc:
        return Mirrored(False, {"alias": env}, exc.message)
    return Mirrored(True, {"alias": env, "models": [
        {"name": v.name, "version": v.version} for v in chosen]})


def _newest_per_model(versions: list[ModelVersion]) -> list[ModelVersion]:
    newest: dict[str, ModelVersion] = {}
    for v in versions:
        have = newest.get(v.name)
        if have is None or (v.created_ms, int(v.version)) > (have.created_ms, int(have.version)):
            newest[v.name] = v
    return [newest[name] for name in sorted(newest)]
