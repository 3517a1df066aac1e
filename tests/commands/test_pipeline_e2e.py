"""End to end on real parts: build -> compile -> run locally -> serve the model.

One module-scoped project, because each step feeds the next and the images
are big; each test is one step and fails on its own.
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.commands.test_compile import repo_files
from tests.conftest import mlops_yaml, reference_files
from tests.support.services import free_port

pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.slow]


@pytest.fixture(scope="module")
def flow(tmp_path_factory, registry_server):
    """A dict the steps fill in, in order."""
    import uuid

    from tests.conftest import Project, git

    base = tmp_path_factory.mktemp("e2e")
    path = base / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    ns = f"{registry_server.host}/e2e{uuid.uuid4().hex[:8]}"
    files = {"mlops.yaml": mlops_yaml(ns), **reference_files(), **repo_files("pipelines"),
             **{k: v for k, v in repo_files("environments").items() if "/pipelines/" not in k}}
    return {"path": path, "ns": ns, "base": base, "files": files, "Project": Project}


@pytest.fixture
def proj(flow, capsys, monkeypatch):
    monkeypatch.delenv("MLOPS_REGISTRY", raising=False)
    p = flow["Project"](flow["path"], capsys, monkeypatch)
    if not (flow["path"] / "mlops.yaml").exists():
        p.write(flow["files"])
        p.commit("initial")
    return p


def test_1_build(proj, flow):
    out = flow["base"] / "build.json"
    result = proj.run("build", "--output", str(out))
    assert result.code == 0, result.err
    flow["build"] = out


def test_2_compile(proj, flow):
    result = proj.run("compile", "--env", "dev", "--build", str(flow["build"]), "--json")
    assert result.code == 0, result.err
    assert result.json["pipelines"][0]["status"] == "compiled"


def test_3_run_pulls_the_pushed_images_and_trains(proj, flow):
    record = json.loads(flow["build"].read_text())
    for b in record["builds"]:  # untag locally so the run must pull by digest
        subprocess.run(["docker", "rmi", f"{b['image']}@{b['digest']}"], capture_output=True)
    out = flow["base"] / "run"
    result = proj.run("run", "training", "--env", "dev", "--local", "--output-dir", str(out),
                      "--json")
    assert result.code == 0, result.err[-3000:]
    run = result.json
    digests = {b["component"]: b["digest"] for b in record["builds"]}
    assert run["images"]["exec-train"].endswith(digests["train"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "f1", "roc_auc"}
    assert metrics["accuracy"] > 0.9 and metrics["roc_auc"] > 0.9  # chance is ~0.63
    assert run["metrics"] == metrics
    assert (out / "model" / "model.joblib").stat().st_size > 0
    _check_run_record(proj, flow, run)
    flow["run_dir"] = out
    flow["run_id"] = run["run_id"]
    flow["serve"] = f"{record['builds'][[b['component'] for b in record['builds']].index('serve')]['image']}@{digests['serve']}"


def _check_run_record(proj, flow, run: dict) -> None:
    """The run's immutable record in .mlops/runs/, as `mlops runs` reads it back."""
    path = flow["path"] / ".mlops" / "runs" / f"{run['run_id']}.json"
    record = json.loads(path.read_text())
    assert record["id"] == run["run_id"] and record["pipeline"] == "training"
    assert (record["env"], record["version"]) == ("dev", run["version"])
    assert record["images"]["train"] == run["images"]["exec-train"]
    assert record["parameters"] == {"c": 1.0, "max_iter": 200, "seed": 42, "test_size": 0.25}
    assert record["metrics"] == run["metrics"] and record["model_uri"] == run["model_uri"]
    assert record["source_commit"] == proj.git("rev-parse", "HEAD")
    assert record["started"].endswith("Z") and record["duration_s"] > 0
    assert json.loads((flow["base"] / "run" / "run.json").read_text())["run_id"] == run["run_id"]
    listed = proj.run("runs", "list", "--pipeline", "training", "--json")
    assert [r["id"] for r in listed.json["runs"]] == [run["run_id"]]


def _rows(run_dir: Path, n: int) -> tuple[list[list[float]], list[int]]:
    test_csv = next(run_dir.glob("artifacts/*/preprocess/test"))
    with test_csv.open() as fh:
        rows = list(csv.DictReader(fh))[:n]
    features = [[float(v) for k, v in r.items() if k != "target"] for r in rows]
    return features, [int(float(r["target"])) for r in rows]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def test_4_serve_answers_v1_v2_and_exposes_metrics(flow):
    http, grpc = free_port(), free_port()
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "host",
         "-v", f"{flow['run_dir'] / 'model'}:/mnt/models:ro", flow["serve"],
         "--model_name", "cancer", "--http_port", str(http), "--grpc_port", str(grpc)],
        capture_output=True, text=True, check=True).stdout.strip()
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/v2/models/cancer/ready", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "serve did not become ready"
                time.sleep(0.5)
        features, targets = _rows(flow["run_dir"], 20)
        v1 = _post(f"{base}/v1/models/cancer:predict", {"instances": features})["predictions"]
        flat = [x for row in features for x in row]
        v2 = _post(f"{base}/v2/models/cancer/infer", {"inputs": [
            {"name": "input-0", "shape": [len(features), 30], "datatype": "FP32", "data": flat}]})
        assert v2["outputs"][0]["data"] == v1
        assert sum(p == t for p, t in zip(v1, targets, strict=True)) >= 18
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert 'serve_inference_requests_total{code="200",model_name="cancer",protocol="v1"} 1.0' in text
        assert "request_predict_seconds" in text
    finally:
        subprocess.run(["docker", "stop", "-t", "2", container], capture_output=True)


def test_5_runs_with_another_c_compare_side_by_side(proj, flow, mlflow_server):
    """Two runs of one compiled pipeline, `--param c=` apart, as `make demo` makes them:
    `runs compare` shows both values, marked as differing, with each run's metrics. The
    second logs to a real MLflow server ($MLFLOW_TRACKING_URI), the first did not."""
    out = flow["base"] / "run-c"
    result = proj.run("run", "training", "--env", "dev", "--local", "--output-dir", str(out),
                      "--param", "c=0.01", "--json", env={"MLFLOW_TRACKING_URI": mlflow_server.url})
    assert result.code == 0, result.err[-3000:]
    second = result.json["run_id"]
    mirrored = result.json["tracking"]
    assert mirrored["ok"] is True, mirrored
    logged = mlflow_server.run(mirrored["run_id"])
    assert logged["info"]["run_name"] == second
    assert {p["key"]: p["value"] for p in logged["data"]["params"]}["c"] == "0.01"
    assert {m["key"]: m["value"] for m in logged["data"]["metrics"]}["accuracy"] == \
        result.json["metrics"]["accuracy"]
    version = mlflow_server.version("training", mirrored["version"])
    assert version["run_id"] == mirrored["run_id"]
    assert "tracking" not in json.loads((flow["run_dir"] / "run.json").read_text())
    doc = proj.run("runs", "compare", flow["run_id"], second, "--json").json
    assert {"name": "c", "values": [1.0, 0.01], "differs": True} in doc["parameters"]
    assert {"name": "seed", "values": [42, 42], "differs": False} in doc["parameters"]
    first_metrics = json.loads((flow["run_dir"] / "metrics.json").read_text())
    accuracy = next(m for m in doc["metrics"] if m["name"] == "accuracy")
    assert accuracy["values"] == [first_metrics["accuracy"], result.json["metrics"]["accuracy"]]
    text = proj.run("runs", "compare", flow["run_id"], second).out
    c_row = next(line for line in text.splitlines() if line.split()[:2] == ["*", "c"])
    assert c_row.split()[2:] == ["1", "0.01"]


def test_6_scheduled_retraining_keeps_the_champion(proj, flow, tmp_path):
    """retrain.yml's job (staging.yml with keep-champion) on an emulated runner, with the
    real mlops, pipeline run, Docker, registry and git: a model that fails staging's gate
    ends the run green, says so, and commits nothing."""
    import shutil
    import sys

    from tests.conftest import BASE_IMAGE, git
    from tests.support.ghrunner import Runner, load_workflow
    from tests.support.workflowcheck import tool
    from tests.test_workflow_runs import SCAFFOLD_DIR, UBUNTU, github

    text = (flow["path"] / "mlops.yaml").read_text()
    gate = "    gates:\n      - metric: accuracy\n        threshold: 0.999\n"
    proj.write({"mlops.yaml": text.replace("  - name: staging\n", "  - name: staging\n" + gate),
                ".gitignore": ".mlops/runs/\n"})
    proj.commit("staging wants a near-perfect model")
    remote = flow["base"] / "remote.git"
    git(flow["base"], "init", "-q", "--bare", "-b", "main", str(remote))
    proj.git("remote", "add", "origin", str(remote))
    proj.git("push", "-q", "origin", "main")
    assert proj.run("promote", "--to", "dev", "--build", str(flow["build"])).code == 0
    head = git(remote, "rev-parse", "main")

    tools = {n: p for n in UBUNTU if (p := shutil.which(n))}
    tools.update(python=sys.executable, python3=sys.executable, git=shutil.which("git"),
                 docker=shutil.which("docker"), mlops=tool("mlops"))
    runner = Runner(tmp_path / "run", remote, tools, github(head),
                    vars={"MLOPS_REGISTRY": flow["ns"], "MLOPS_PIP_SPEC": "mlops",
                          "MLOPS_MODELCAR_BASE": BASE_IMAGE},
                    env={"PIP_NO_INDEX": "1"})  # `Install mlops` finds it installed
    job = runner.run_job(load_workflow(SCAFFOLD_DIR / "staging.yml"), "promote-staging",
                         inputs={"keep-champion": True})
    assert job.result == "success", job.log()
    assert "### Kept the champion" in job.summary
    assert "accuracy-threshold" in job.summary  # mlops's own gate table, above it
    assert git(remote, "rev-parse", "main") == head  # staging unchanged: nothing committed
