"""MLflow tracking against a real `mlflow server` (SQLite backend): what `mlops run` logs,
the model version it registers, and the aliases promotions set, read back over the REST API.

The run records are written the way `mlops run` writes them (no pipeline run here:
tests/commands/test_pipeline_e2e.py runs the real one); the promotion commands are
in tests/commands/test_tracking_promote.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mlops import config as cfg
from mlops.adapters.tracking import Tracker, is_local
from mlops.core.runs import RunRecord, parse
from mlops.release import Release
from mlops.services import tracking
from tests.support.promotion import Playground, repo_files
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def record(run_id: str = "20260101T120000-abc123", model_uri: str | None = None,
           pipeline: str = "training", **over) -> RunRecord:
    fields = dict(id=run_id, pipeline=pipeline, env="dev", version=f"{pipeline}-1a2b3c4d",
                  started="2026-01-01T12:00:00Z", duration_s=12.5,
                  images={"train": "127.0.0.1:5000/ns/train@sha256:" + "a" * 64},
                  parameters={"c": 1.0, "max_iter": 200, "scale": True},
                  metrics={"accuracy": 0.95, "roc_auc": 0.97}, model_uri=model_uri,
                  source_commit=COMMIT)
    return RunRecord(**{**fields, **over})


def tracked_playground(project, tmp_path, ns: str, server_url: str, prefix: str,
                       run_id: str) -> tuple[Playground, str, str, str]:
    """A promotion playground whose mlops.yaml tracks a registered model of its own, with one
    run of it logged to MLflow: (playground, model, model URI, the version registered)."""
    model = f"{prefix}-{uuid.uuid4().hex[:8]}"
    files = repo_files(ns)
    files["mlops.yaml"] = f"{files['mlops.yaml']}tracking:\n  model: {model}\n"
    play = Playground(tmp_path, project(files))
    uri = f"s3://models/{model}/1"
    logged = tracking.log_run(cfg.Tracking(uri=server_url, model=model), record(run_id, uri))
    assert logged is not None and logged.ok, logged
    return play, model, uri, logged.detail["version"]


def release(model_uri: str | None = None) -> Release:
    return Release(source_commit=COMMIT, images={}, model_uri=model_uri)


def on(server, **over) -> cfg.Tracking:
    return cfg.Tracking(uri=server.url, **over)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tags_of(entity: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in entity.get("tags", [])}


def test_a_run_is_logged_with_params_metrics_tags_and_a_model_version(mlflow_server):
    model = unique("training")
    uri = f"s3://models/{model}/1"
    run = record(model_uri=uri)
    mirrored = tracking.log_run(on(mlflow_server, model=model), run)
    assert mirrored is not None and mirrored.ok, mirrored
    got = mlflow_server.run(mirrored.detail["run_id"])
    assert got["info"]["run_name"] == run.id and got["info"]["status"] == "FINISHED"
    assert got["info"]["start_time"] == 1767268800000
    assert got["info"]["end_time"] == 1767268800000 + 12500
    data = got["data"]
    assert {p["key"]: p["value"] for p in data["params"]} == {
        "c": "1.0", "max_iter": "200", "scale": "true"}
    assert {m["key"]: m["value"] for m in data["metrics"]} == {"accuracy": 0.95, "roc_auc": 0.97}
    tags = tags_of(data)
    assert {k: tags[k] for k in tags if k.startswith("mlops.")} == {
        "mlops.run_id": run.id, "mlops.pipeline": "training", "mlops.env": "dev",
        "mlops.pipeline_version": run.version, "mlops.source_commit": COMMIT,
        "mlops.model_uri": uri, "mlops.image.train": run.images["train"]}
    assert tags["mlflow.source.git.commit"] == COMMIT
    experiment = mlflow_server.get("experiments/get-by-name", experiment_name="training")
    assert got["info"]["experiment_id"] == experiment["experiment"]["experiment_id"]
    assert mirrored.detail["experiment_id"] == got["info"]["experiment_id"]

    version = mlflow_server.version(model, mirrored.detail["version"])
    assert version["source"] == uri and version["run_id"] == mirrored.detail["run_id"]
    assert tags_of(version) == {"mlops.run_id": run.id, "mlops.model_uri": uri,
                                "mlops.pipeline_version": run.version,
                                "mlops.source_commit": COMMIT}
    assert mirrored.dump() == {"ok": True, "experiment_id": got["info"]["experiment_id"],
                               "run_id": mirrored.detail["run_id"], "model": model,
                               "version": "1", "source": uri}


def test_a_local_model_is_registered_from_the_runs_artifact_path(mlflow_server, tmp_path):
    """The server refuses a `file:` source outside the run's artifact folder: such a model
    becomes `runs:/<run>/model`, its real URI kept in the version's tags."""
    model = unique("local")
    uri = (tmp_path / "model").as_uri()
    mirrored = tracking.log_run(on(mlflow_server, model=model, experiment=model),
                                record(model_uri=uri))
    assert mirrored is not None and mirrored.ok, mirrored
    version = mlflow_server.version(model, mirrored.detail["version"])
    assert version["source"] == f"runs:/{mirrored.detail['run_id']}/model"
    assert tags_of(version)["mlops.model_uri"] == uri
    experiment = mlflow_server.get("experiments/get-by-name", experiment_name=model)
    assert mlflow_server.run(mirrored.detail["run_id"])["info"]["experiment_id"] == \
        experiment["experiment"]["experiment_id"]


def test_a_run_without_a_model_registers_nothing(mlflow_server):
    mirrored = tracking.log_run(on(mlflow_server, experiment=unique("nomodel")), record())
    assert mirrored is not None and mirrored.ok
    assert set(mirrored.detail) == {"experiment_id", "run_id"}


def test_the_record_keeps_mlflows_ids_and_parses_back():
    run = record(mlflow={"run_id": "abc", "experiment_id": "1", "model": "m", "version": "2"})
    doc = run.dump()
    assert doc["mlflow"] == {"experiment_id": "1", "model": "m", "run_id": "abc", "version": "2"}
    assert parse(doc) == run
    plain = record().dump()
    assert "mlflow" not in plain and parse(plain).mlflow is None  # older records still read


def test_promotions_move_the_environment_alias(mlflow_server):
    model = unique("promoted")
    settings = on(mlflow_server, model=model)
    first_uri, second_uri = f"s3://models/{model}/1", f"s3://models/{model}/2"
    first = tracking.log_run(settings, record("20260101T120000-000001", first_uri))
    second = tracking.log_run(settings, record("20260101T130000-000002", second_uri))
    assert first and first.ok and second and second.ok

    staged = tracking.mirror_promotion(settings, "staging", release(model_uri=first_uri))
    assert staged is not None and staged.ok, staged
    assert staged.dump() == {"ok": True, "alias": "staging",
                             "models": [{"name": model, "version": first.detail["version"]}]}
    assert mlflow_server.alias(model, "staging") == first.detail["version"]

    again = tracking.mirror_promotion(settings, "staging", release(model_uri=second_uri))
    assert again is not None and again.ok
    assert mlflow_server.alias(model, "staging") == second.detail["version"]
    assert tracking.mirror_promotion(settings, "prod", release(model_uri=first_uri)).ok
    assert mlflow_server.alias(model, "prod") == first.detail["version"]
    assert mlflow_server.alias(model, "staging") == second.detail["version"]


def test_a_release_without_a_model_or_a_version_is_reported(mlflow_server):
    settings = on(mlflow_server, model=unique("none"))
    skipped = tracking.mirror_promotion(settings, "staging", release())
    assert skipped is not None and skipped.ok and "skipped" in skipped.detail
    missing = tracking.mirror_promotion(settings, "staging",
                                        release(model_uri="s3://models/never-logged"))
    assert missing is not None and not missing.ok
    assert "no model version in MLflow has mlops.model_uri=s3://models/never-logged" in \
        missing.error
    assert missing.warning("alias staging").startswith("warning: MLflow not updated")


def test_an_unreachable_server_is_one_redacted_error_within_seconds():
    url = f"http://user:hunter2@127.0.0.1:{free_port()}"
    started = time.monotonic()
    mirrored = tracking.log_run(cfg.Tracking(uri=url), record(model_uri="s3://m/1"))
    assert time.monotonic() - started < 15
    assert mirrored is not None and not mirrored.ok
    assert "unreachable" in mirrored.error and "connection refused" in mirrored.error
    assert "hunter2" not in mirrored.error and "\n" not in mirrored.error
    promoted = tracking.mirror_promotion(cfg.Tracking(uri=url), "staging",
                                         release(model_uri="s3://m/1"))
    assert promoted is not None and not promoted.ok and "hunter2" not in promoted.error
    assert promoted.dump()["ok"] is False and promoted.dump()["alias"] == "staging"


def test_without_a_uri_nothing_is_done():
    assert tracking.log_run(cfg.Tracking(model="m"), record()) is None
    assert tracking.mirror_promotion(cfg.Tracking(), "staging", release(model_uri="s3://m")) \
        is None


@pytest.mark.parametrize(("uri", "local"), [
    ("file:///tmp/m", True), ("/tmp/m", True), ("s3://b/m", False), ("gs://b/m", False),
    ("https://h/m", False),
])
def test_which_model_uris_are_local(uri, local):
    assert is_local(uri) is local


PROBE = """
import sys
from mlops import config as cfg
from mlops.commands import promote, run  # both commands, as the CLI imports them
from mlops.services import tracking
from tests.services.test_tracking import record, release
uri = sys.argv[1] if len(sys.argv) > 1 else None
settings = cfg.Tracking(uri=uri)
tracking.log_run(settings, record(model_uri="s3://m/1"))
tracking.mirror_promotion(settings, "staging", release(model_uri="s3://m/1"))
print("mlflow" in sys.modules, any(m.startswith("mlflow") for m in sys.modules))
"""


def test_without_the_setting_mlflow_is_never_imported():
    """`mlops run` and `mlops promote` call these with the config's Tracking: off, they
    import nothing; on (even against a server that is not there), the client loads."""
    off = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT)
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() == ["False", "False"]
    on_ = subprocess.run([sys.executable, "-c", PROBE, f"http://127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert on_.returncode == 0, on_.stderr
    assert on_.stdout.split() == ["True", "True"]


def test_the_tracker_finds_versions_by_tag(mlflow_server):
    model = unique("tagged")
    mirrored = tracking.log_run(on(mlflow_server, model=model), record(model_uri="gs://b/x"))
    assert mirrored and mirrored.ok
    found = Tracker(mlflow_server.url).versions_tagged("mlops.model_uri", "gs://b/x", model)
    assert [(v.name, v.version) for v in found] == [(model, mirrored.detail["version"])]


def test_the_longest_duration_a_record_may_hold_is_logged_in_milliseconds():
    from mlops.core.runs import MAX_DURATION_S, CorruptRun

    longest = parse({**record().dump(), "duration_s": MAX_DURATION_S})
    log = tracking.run_log(cfg.Tracking(uri="http://127.0.0.1:1"), longest)
    assert log.end_ms - log.start_ms == MAX_DURATION_S * 1000
    with pytest.raises(CorruptRun, match="duration_s must be"):  # 1e308 s: int(inf) before
        parse({**record().dump(), "duration_s": 1e308})
