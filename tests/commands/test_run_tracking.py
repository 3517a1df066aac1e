"""`mlops run`'s last step with MLflow on: the run is logged before its record is written,
so the record (and `run --json`) keeps MLflow's ids; MLflow out of reach leaves a record
without them and one warning. The pipeline run itself is tests/commands/test_pipeline_e2e.py's;
here its collected outputs go through the command's own recording step against a real
`mlflow server`."""

from __future__ import annotations

import json

from mlops import config as cfg
from mlops.commands import run as run_command
from mlops.services import runstore
from tests.conftest import git
from tests.support.services import free_port

SPEC = {"root": {"inputDefinitions": {"parameters": {
    "c": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 1.0},
    "max_iter": {"parameterType": "NUMBER_INTEGER", "defaultValue": 200.0}}}}}


def collected(model_uri: str) -> dict:
    """What `run` collected from a finished pipeline (`_collect`)."""
    return {"pipeline": "training", "env": "dev", "version": "training-0a1b2c3d",
            "images": {"exec-train": "127.0.0.1:5000/ns/train@sha256:" + "b" * 64},
            "parameters": {"c": 0.5}, "metrics": {"accuracy": 0.93}, "model_uri": model_uri}


def repo(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty",
        "-m", "init")
    return tmp_path


def test_the_run_record_keeps_mlflows_ids(tmp_path, mlflow_server):
    root = repo(tmp_path)
    settings = cfg.Tracking(uri=mlflow_server.url, model="run-tracking")
    recorded, mirrored = run_command._record_run(root, settings, runstore.start(),
                                                 collected("s3://models/run/1"), SPEC)
    assert mirrored is not None and mirrored.ok, mirrored
    on_disk = json.loads((root / ".mlops/runs" / f"{recorded.id}.json").read_text())
    assert on_disk["mlflow"] == {"experiment_id": mirrored.detail["experiment_id"],
                                 "model": "run-tracking", "run_id": mirrored.detail["run_id"],
                                 "version": mirrored.detail["version"]}
    logged = mlflow_server.run(mirrored.detail["run_id"])
    assert logged["info"]["run_name"] == recorded.id
    assert {p["key"]: p["value"] for p in logged["data"]["params"]} == {
        "c": "0.5", "max_iter": "200"}
    assert runstore.read(root, recorded.id) == recorded


def test_mlflow_out_of_reach_still_records_the_run(tmp_path):
    root = repo(tmp_path)
    settings = cfg.Tracking(uri=f"http://127.0.0.1:{free_port()}")
    recorded, mirrored = run_command._record_run(root, settings, runstore.start(),
                                                 collected("s3://models/run/2"), SPEC)
    assert mirrored is not None and not mirrored.ok and "unreachable" in mirrored.error
    assert recorded.mlflow is None
    assert "mlflow" not in json.loads((root / ".mlops/runs" / f"{recorded.id}.json").read_text())


def test_without_tracking_the_record_is_as_before(tmp_path):
    root = repo(tmp_path)
    recorded, mirrored = run_command._record_run(root, cfg.Tracking(), runstore.start(),
                                                 collected("s3://models/run/3"), SPEC)
    assert mirrored is None and recorded.mlflow is None
