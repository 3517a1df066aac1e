"""Guarantees of docs/continuous-training.md, docs/fan-out-builds.md, docs/concepts.md and
components/README.md that no other test proved, each on real parts: git repositories in
tmp_path, the real CLI, a real registry, Docker Engine, serve container and MLflow server."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import threading
import uuid

import pytest
import requests

from mlops import config as cfg
from mlops.cli import main
from mlops.services import tracking
from tests.commands.conftest import GOOD, build_repo
from tests.commands.test_build_fanout import delete_image, plan_of, shard
from tests.commands.test_runs import NEW, OLD, run_record
from tests.conftest import REPO_ROOT, git, mlops_yaml, tiny_component
from tests.services.test_tracking import record, release, tracked_playground
from tests.support import canary

RUN = ".mlops/runs/20250101T120000-abcdef.json"


# -- continuous-training.md: runs ------------------------------------------------------


def test_run_records_are_git_ignored_here_and_in_the_scaffold(tmp_path, monkeypatch, capsys):
    """"`.mlops/runs/` is git-ignored here and in the `mlops init` scaffold"."""
    assert subprocess.run(["git", "check-ignore", "-q", RUN], cwd=REPO_ROOT).returncode == 0
    for key in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{key}_NAME", "Ada Dev")
        monkeypatch.setenv(f"GIT_{key}_EMAIL", "ada@example.test")
    monkeypatch.chdir(tmp_path)
    assert main(["init", "ml"]) == 0, capsys.readouterr().err
    repo = tmp_path / "ml"
    (repo / RUN).parent.mkdir(parents=True)
    (repo / RUN).write_text("{}")
    (repo / RUN.removesuffix(".json") / "model").mkdir(parents=True)
    (repo / RUN.removesuffix(".json") / "model" / "model.joblib").write_text("m")
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_compare_shows_a_missing_value_as_a_dash(project):
    """"`-` is a value a run does not have, such as a parameter only a newer pipeline
    declares"."""
    newer = run_record(NEW, parameters={"c": 1.0, "max_iter": 200, "seed": 42, "tol": 0.01})
    proj = project({f".mlops/runs/{OLD}.json": json.dumps(run_record(OLD)),
                    f".mlops/runs/{NEW}.json": json.dumps(newer)})
    result = proj.run("runs", "compare", OLD, NEW)
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if "tol" in line.split())
    assert row.split() == ["*", "tol", "-", "0.01"]


# -- continuous-training.md: MLflow -----------------------------------------------------


def test_a_connection_that_fails_is_tried_three_times_in_all(monkeypatch):
    """"A connection that fails is tried three times in all" (the client's own retries
    off): a server that drops every connection sees three."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "x")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")  # unset, restored after
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def drop() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()

    threading.Thread(target=drop, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        mirrored = tracking.log_run(cfg.Tracking(uri=url), record(model_uri="s3://m/1"))
    finally:
        server.close()
    assert mirrored is not None and not mirrored.ok and "unreachable" in mirrored.error
    assert len(accepted) == 3


def test_the_alias_goes_to_the_newest_version_of_each_registered_model(mlflow_server):
    """"the newest version, per registered model (only `tracking.model`, when it is set),
    whose `mlops.model_uri` tag is the release's model URI"."""
    uri = f"s3://models/shared-{uuid.uuid4().hex[:8]}"
    first, second = (f"m-{uuid.uuid4().hex[:8]}" for _ in range(2))
    versions = {}
    for n, model in enumerate((first, first, second)):
        logged = tracking.log_run(cfg.Tracking(uri=mlflow_server.url, model=model),
                                  record(f"20260102T12000{n}-00000{n}", uri))
        assert logged is not None and logged.ok, logged
        versions[model] = logged.detail["version"]  # the last one logged: the newest
    assert versions[first] == "2"
    every = tracking.mirror_promotion(cfg.Tracking(uri=mlflow_server.url), "staging",
                                      release(model_uri=uri))
    assert every is not None and every.ok, every
    assert sorted(every.detail["models"], key=lambda m: m["name"]) == sorted(
        [{"name": m, "version": v} for m, v in versions.items()], key=lambda m: m["name"])
    only = tracking.mirror_promotion(cfg.Tracking(uri=mlflow_server.url, model=second),
                                     "prod", release(model_uri=uri))
    assert only is not None and only.ok and only.detail["models"] == [
        {"name": second, "version": versions[second]}]
    assert mlflow_server.alias(first, "prod") is None
    assert mlflow_server.alias(first, "staging") == "2"


@pytest.fixture(scope="module")
def built(tmp_path_factory, registry_server, docker_engine):
    """The tiny components built and pushed once: (registry namespace, build record)."""
    ns = f"{registry_server.host}/docs{uuid.uuid4().hex[:8]}"
    return ns, build_repo(tmp_path_factory.mktemp("docs-build"), ns)[1]


def test_a_plan_or_a_pr_promotion_sets_no_alias(project, built, tmp_path, mlflow_server):
    """"A `--plan` or a `--pr` promotion sets no alias"; the promotion itself then does."""
    play, model, uri, version = tracked_playground(project, tmp_path, built[0],
                                                   mlflow_server.url, "plan",
                                                   "20260103T120000-000001")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    args = ("promote", "--to", "dev", "--build", str(built[1]), "--model-uri", uri,
            "--metrics", str(play.metrics("m", GOOD)), "--json")
    for extra in ("--plan", "--pr"):
        result = play.proj.run(*args, extra, env=env)
        assert result.code == 0, result.err
        assert "tracking" not in result.json and "MLflow" not in result.err
        assert mlflow_server.alias(model, "dev") is None
    promoted = play.proj.run(*args, env=env)
    assert promoted.code == 0 and promoted.json["tracking"]["ok"], promoted.err
    assert mlflow_server.alias(model, "dev") == version


# -- fan-out-builds.md ------------------------------------------------------------------


@pytest.mark.usefixtures("docker_engine")
def test_a_plan_asks_the_registry_never_the_local_cache(project, registry, tmp_path):
    """The plan asks "the registry, never the local cache"; `seconds` is "written for
    every component a build built" and `--timings` weighs components by it; `--force`
    and COMPONENT arguments shape the plan."""
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("kept"),
                    **tiny_component("gone")})
    record_path = tmp_path / "build.json"
    assert proj.run("build", "--output", str(record_path)).code == 0
    made = {b["component"]: b for b in json.loads(record_path.read_text())["builds"]}
    assert all(b["seconds"] > 0 for b in made.values())
    delete_image(server, f"{ns.split('/', 1)[1]}/gone", made["gone"]["digest"])

    dry = proj.run("build", "--dry-run", "--json")  # a dry run may answer from the cache
    assert dry.code == 0 and {p["action"] for p in dry.json["plan"]} == {"reuse"}, dry.out
    plan, _ = plan_of(proj, tmp_path, "--shards", "2", "--timings", str(record_path))
    actions = {c["component"]: c["action"] for c in plan["components"]}
    assert actions == {"kept": "reuse", "gone": "build"}
    assert plan["matrix"]["include"] == [
        {"shard": 0, "components": "gone", "size": round(made["gone"]["seconds"], 3)}]
    sizes = {c["component"]: c["size"] for c in plan["components"]}
    assert sizes == {n: round(b["seconds"], 3) for n, b in made.items()}

    forced, _ = plan_of(proj, tmp_path, "--shards", "2", "--force")
    assert {c["action"] for c in forced["components"]} == {"build"} and forced["shards"] == 2
    named = proj.run("build", "kept", "--plan", "--json")
    assert named.code == 0 and [c["component"] for c in named.json["components"]] == ["kept"]


@pytest.mark.usefixtures("docker_engine")
def test_a_shards_failed_component_is_in_its_record_and_the_merge_refuses_it(
        project, registry, tmp_path):
    """A shard's record is "a build record plus `"plan": {"id": "sha256:...", "shard":
    K}`; a failed component is in it with `status: failed`, and the job fails (exit 1)"."""
    _, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("fine"),
                    **tiny_component("broken", test='["python3", "-c", "raise SystemExit(4)"]')})
    plan, path = plan_of(proj, tmp_path, "--shards", "2")
    which = {e["components"]: e["shard"] for e in plan["matrix"]["include"]}
    parts = {}
    for name in ("fine", "broken"):
        result, part = shard(proj, tmp_path, path, which[name])
        assert result.code == (1 if name == "broken" else 0), result.err
        parts[name] = json.loads(part.read_text())
        assert parts[name]["plan"]["shard"] == which[name]
        assert parts[name]["plan"]["id"].startswith("sha256:")
    [failed] = parts["broken"]["builds"]
    assert failed["status"] == "failed" and failed["digest"] is None
    out = tmp_path / "merged.json"
    merged = proj.run("build", "--merge", str(tmp_path / f"part-{which['fine']}.json"),
                      str(tmp_path / f"part-{which['broken']}.json"), "--plan", path,
                      "--output", str(out))
    assert merged.code == 1 and "component 'broken' failed" in merged.err
    assert not out.exists()


def test_fanout_usage_errors_are_exit_2(project, registry, tmp_path):
    """Exit 2: a plan file that is not there; components that build in a circle."""
    _, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns),
                    **tiny_component("a", extra="depends_on: [components/b]\n"),
                    **tiny_component("b", extra="depends_on: [components/a]\n")})
    missing = proj.run("build", "--shard", "0", "--plan", str(tmp_path / "no-plan.json"))
    assert missing.code == 2 and "build plan not found" in missing.err, missing.err
    circle = proj.run("build", "--plan", "--shards", "2")
    assert circle.code == 2 and "build in a circle" in circle.err, circle.err


# -- concepts.md --------------------------------------------------------------------------


def test_mlops_runs_kubectl_only_to_render_and_reads_the_cluster_only():
    """"`mlops` never calls `kubectl apply`": the one module that names kubectl runs
    `kubectl kustomize`, and the cluster adapter calls no writing API."""
    naming = []
    for path in sorted((REPO_ROOT / "mlops").rglob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.Constant) and n.value == "kubectl" for n in ast.walk(tree)):
            naming.append(path.relative_to(REPO_ROOT).as_posix())
            argvs = [n for n in ast.walk(tree) if isinstance(n, ast.List) and n.elts
                     and isinstance(n.elts[0], ast.Name) and n.elts[0].id == "kubectl"]
            assert argvs and all(isinstance(a.elts[1], ast.Constant)
                                 and a.elts[1].value == "kustomize" for a in argvs)
    assert naming == ["mlops/adapters/kustomize.py"]
    cluster = ast.parse((REPO_ROOT / "mlops/adapters/cluster.py").read_text())
    called = {n.func.attr for n in ast.walk(cluster)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    writing = {c for c in called if c.startswith(("create", "patch", "replace", "delete"))}
    assert "get_namespaced_custom_object" in called and writing == set()


# -- components/README.md -----------------------------------------------------------------


def test_the_pipeline_components_share_their_pip_layer_and_serve_pins_the_same():
    """preprocess, train and evaluate: "a byte-identical requirements.txt and the
    Dockerfile lines up to the pip install"; serve pins scikit-learn, joblib, numpy
    and scipy to the same versions."""
    comp = REPO_ROOT / "components"
    reqs = {n: (comp / n / "requirements.txt").read_bytes()
            for n in ("preprocess", "train", "evaluate")}
    assert len(set(reqs.values())) == 1
    heads = set()
    for name in reqs:
        lines = (comp / name / "Dockerfile").read_text().splitlines(keepends=True)
        end = next(i for i, line in enumerate(lines) if line.startswith("RUN pip install"))
        heads.add("".join(lines[:end + 1]))
    assert len(heads) == 1

    def pins(text: str) -> dict[str, str]:
        return dict(line.split("==") for line in text.splitlines() if "==" in line)

    shared = pins(reqs["train"].decode())
    serve = pins((comp / "serve/requirements.txt").read_text())
    for package in ("scikit-learn", "joblib", "numpy", "scipy"):
        assert serve[package] == shared[package], package
    assert serve["kserve"] == "0.21.0"


@pytest.mark.usefixtures("docker_engine")
def test_serve_answers_as_the_readme_says(tmp_path):
    """The serve image's answers: the v2 response, a body sent without content-type,
    malformed input, invalid JSON per protocol, an unknown model, readiness, /metrics."""
    image = canary.build_serve_image("mlops-test/serve:docs-claims")
    models = canary.make_models(image, tmp_path / "models", trees=1)
    box = canary.ServeContainer("docs-claims", models.stable)
    v1, v2 = f"{box.url}/v1/models/cancer:predict", f"{box.url}/v2/models/cancer/infer"
    rows = models.rows[:2]
    tensor = {"inputs": [{"name": "input-0", "shape": [2, 30], "datatype": "FP32",
                          "data": [x for row in rows for x in row]}]}
    as_json = {"content-type": "application/json"}
    with canary.running(image, [box]):
        ok = requests.post(v2, json=tensor, timeout=10)
        assert ok.status_code == 200
        [out] = ok.json()["outputs"]
        assert (out["name"], out["shape"], out["datatype"]) == ("output-0", [2], "INT64")
        assert requests.post(v1, json={"instances": rows}, timeout=10).json() == {
            "predictions": out["data"]}
        bare = requests.post(v2, data=json.dumps(tensor), timeout=10)
        assert bare.status_code == 400 and "inference-header-content-length" in bare.text
        bad = requests.post(v1, json={"instances": [[1.0]]}, timeout=10)
        assert bad.status_code == 400 and set(bad.json()) == {"error"}
        broken_v1 = requests.post(v1, data=b"{not json", headers=as_json, timeout=10)
        assert broken_v1.status_code == 400 and set(broken_v1.json()) == {"error"}
        broken_v2 = requests.post(v2, data=b"{not json", headers=as_json, timeout=10)
        assert broken_v2.status_code == 422 and "detail" in broken_v2.json()
        other = requests.post(v1.replace("cancer", "x"), json={"instances": rows}, timeout=9)
        assert other.status_code == 404
        for ready in (f"{box.url}/v1/models/cancer", f"{box.url}/v2/models/cancer/ready"):
            assert requests.get(ready, timeout=10).json()["ready"] is True
        text = requests.get(f"{box.url}/metrics", timeout=10).text
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    total = "serve_inference_requests_total{code="
    assert {f'{total}"422",model_name="cancer",protocol="v2"}} 1.0',
            f'{total}"404",model_name="unknown",protocol="v1"}} 1.0'} <= set(samples)
    for family in ("serve_predictions_total{", "process_", "python_"):
        assert any(s.startswith(family) for s in samples), family
