"""`mlops status` end to end: a real bare remote, real kubectl kustomize, the API stub.

The expected state is what the remote branch says; the observed state is what
the stub serves, as the Kubernetes API would. Most tests write release.yaml
directly (status only reads it); the last one promotes for real first.
"""

from __future__ import annotations

import io
import json
import time

import pytest

from mlops import release as rel
from mlops.commands import Context
from mlops.commands.status import StatusOptions, rollout_status
from mlops.output import Output
from tests.commands.conftest import release_of
from tests.support import kubestub as ks
from tests.support.promotion import Playground, repo_files

DIGEST = "sha256:" + "ab" * 32
CANARY = {"state": "canary", "percent": 10, "step": 1, "steps": 3, "baseline": "r-0123456789ab"}


@pytest.fixture
def stub():
    with ks.KubeStub() as server:
        yield server


@pytest.fixture
def setup(project, tmp_path, stub):
    """(playground, the environment variables that point the CLI at the stub)."""
    play = Playground(tmp_path, project(repo_files("127.0.0.1:5000/status")))
    kubeconfig = stub.kubeconfig(tmp_path / "kubeconfig")
    return play, {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}


def push(play, files, message="change"):
    play.proj.write(files)
    play.proj.commit(message)
    play.proj.git("push", "-q", "origin", "main")
    return play.remote_head()


def record(env="dev", rollout=None) -> str:
    release = rel.Release(source_commit="c0ffee" * 6 + "c0ff",
                          images={"serve": rel.Image("127.0.0.1:5000/status/serve", DIGEST)},
                          model_uri="pvc://models/cancer/v2")
    return rel.render(rel.EnvRecord(env, release, "build", rollout=rollout))


def app(revision, **kw):
    return ks.application("mlops-dev", revision=revision, dest_namespace="dev",
                          path="environments/dev", **kw)


def status(play, env, *args):
    return play.proj.run("status", "--env", "dev", *args, env=env)


def test_human_report_of_a_converged_environment(setup, stub):
    play, env = setup
    head = play.remote_head()
    stub.put(app(head), ks.inference_service("cancer", "dev"))
    result = status(play, env)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"environment  dev on {stub.url}"
    assert lines[1] == (f"expected     commit {head[:10]}, release none, "
                        "latest revision at 100%")
    assert lines[2] == (f"argo cd      argocd/mlops-dev: Synced to {head[:10]}, Healthy "
                        "(last sync Succeeded)")
    assert lines[3] == "kserve       dev/cancer: Ready  http://cancer.dev.example.com"
    assert "traffic      cancer-predictor-00001" in result.out
    assert lines[-1] == "converged    yes"
    assert play.proj.status() == ""


def test_json_report_of_a_canary_at_its_step(setup, stub):
    play, env = setup
    head = push(play, {"environments/dev/release.yaml": record(rollout=CANARY)}, "canary")
    stub.put(app(head), ks.inference_service("cancer", "dev", latest=2, previous=1, percent=10))
    result = status(play, env, "--json")
    assert result.code == 0, result.err
    doc = result.json
    assert doc["converged"] is True and doc["pending"] == []
    assert doc["expected"] == {"revision": head, "percent": 10,
                               "application": "argocd/mlops-dev", "service": "dev/cancer"}
    assert doc["release"] == release_of(play, "dev")["id"] and doc["rollout"] == CANARY
    assert doc["split"] == {"expected": 10, "observed": 10, "as_expected": True}
    assert [(t["revision_name"], t["percent"], t["tag"]) for t in doc["service"]["traffic"]] == [
        ("cancer-predictor-00002", 10, "latest"), ("cancer-predictor-00001", 90, "prev")]
    assert doc["application"]["synced"] is True and doc["cluster"] == stub.url


def test_not_converged_is_still_a_report_with_exit_0(setup, stub):
    play, env = setup
    old = play.remote_head()
    head = push(play, {"environments/dev/release.yaml": record(rollout=CANARY)}, "canary")
    stub.put(app(old, sync="OutOfSync"), ks.inference_service("cancer", "dev"))
    result = status(play, env, "--json")
    assert result.code == 0, result.err
    assert result.json["converged"] is False
    assert result.json["pending"] == [
        "Argo CD Application argocd/mlops-dev is OutOfSync",
        f"Argo CD synced {old[:10]}, expected {head[:10]}",
        "latest revision has 100% of traffic, expected 10%"]
    human = status(play, env)
    assert human.code == 0
    assert human.out.splitlines()[-4:] == [
        "converged    no", "  - Argo CD Application argocd/mlops-dev is OutOfSync",
        f"  - Argo CD synced {old[:10]}, expected {head[:10]}",
        "  - latest revision has 100% of traffic, expected 10%"]


def test_revision_option_overrides_the_remote_head(setup, stub):
    play, env = setup
    old = play.remote_head()
    push(play, {"README.md": "later\n"})
    stub.put(app(old), ks.inference_service("cancer", "dev"))
    assert status(play, env, "--json").json["converged"] is False
    result = status(play, env, "--json", "--revision", old[:12])
    assert result.code == 0 and result.json["converged"] is True


def test_wait_converges_when_argo_cd_and_kserve_catch_up(setup, stub):
    play, env = setup
    old = play.remote_head()
    head = push(play, {"environments/dev/release.yaml": record(rollout=CANARY)}, "canary")
    stub.put(app(old, sync="OutOfSync"), ks.inference_service("cancer", "dev"))
    # caught up once status's first poll (both objects) was answered
    stub.after(2, app(head), ks.inference_service("cancer", "dev", latest=2, previous=1,
                                                  percent=10))
    started = time.monotonic()
    result = status(play, env, "--json", "--wait", "--timeout", "30")
    assert result.code == 0, result.err
    assert result.json["converged"] is True
    assert time.monotonic() - started < 30
    assert "waiting for dev: Argo CD Application argocd/mlops-dev is OutOfSync" in result.err
    assert len(stub.requests) >= 4  # polled more than once, two objects each time


def test_wait_timeout_exits_1_with_what_is_pending(setup, stub):
    play, env = setup
    old = play.remote_head()
    head = push(play, {"README.md": "later\n"})
    stub.put(app(old), ks.inference_service("cancer", "dev", ready=False, latest=2, previous=1))
    started = time.monotonic()
    result = status(play, env, "--json", "--wait", "--timeout", "1")
    assert result.code == 1
    assert time.monotonic() - started < 15
    assert result.json["converged"] is False
    errors = [line for line in result.err.splitlines() if line.startswith("mlops: error:")]
    assert errors == [
        f"mlops: error: dev did not converge within 1s: Argo CD synced {old[:10]}, expected "
        f"{head[:10]}; InferenceService dev/cancer is not Ready (RevisionMissing: Configuration "
        '"cancer-predictor" is waiting for a Revision to become ready: cancer-predictor-00002 is '
        "not ready); InferenceService dev/cancer revision cancer-predictor-00002 is not ready yet"]


def test_unknown_environment_is_usage_error(setup, stub):
    play, env = setup
    result = play.proj.run("status", "--env", "qa", env=env)
    assert result.code == 2
    assert result.err.strip() == "mlops: error: unknown environment 'qa' (known: dev, staging, prod)"
    assert stub.requests == []


def test_overlay_service_missing_from_the_cluster_is_a_clear_error(setup, stub):
    play, env = setup
    kustomization = play.remote_show("environments/dev/kustomization.yaml")  # stripped
    push(play, {"environments/dev/kustomization.yaml": kustomization + "\nnamePrefix: x-\n"})
    stub.put(app(play.remote_head()), ks.inference_service("cancer", "dev"))
    result = status(play, env)
    assert result.code == 1 and result.out == ""
    assert result.err.strip() == (
        f"mlops: error: InferenceService dev/x-cancer not found on {stub.url}; has Argo CD "
        "synced environments/dev? (`service:` / `namespace:` in mlops.yaml name it)")


def test_missing_application_is_a_clear_error(setup, stub):
    play, env = setup
    stub.put(ks.inference_service("cancer", "dev"))
    result = status(play, env, "--json")
    assert result.code == 1
    assert result.json["error"].startswith("Argo CD Application argocd/mlops-dev not found on ")


def test_configured_names_and_namespaces_are_used(setup, stub):
    play, env = setup
    config = play.remote_show("mlops.yaml").replace(
        "  - name: dev\n",
        "  - name: dev\n    service: fraud\n    namespace: ml-dev\n    application: dev-app\n"
    ) + "\nargocd:\n  namespace: gitops\n"  # remote_show strips the last newline
    head = push(play, {"mlops.yaml": config})
    stub.put(ks.application("dev-app", namespace="gitops", revision=head,
                            dest_namespace="ml-dev", path="environments/dev", service="fraud"),
             ks.inference_service("fraud", "ml-dev"))
    result = status(play, env, "--json")
    assert result.code == 0, result.err
    assert result.json["converged"] is True
    assert result.json["expected"]["application"] == "gitops/dev-app"
    assert result.json["expected"]["service"] == "ml-dev/fraud"


def test_cluster_trouble_is_one_line(setup, stub, tmp_path):
    play, env = setup
    stub.put(app(play.remote_head()), ks.inference_service("cancer", "dev"))
    stub.fail_with = 500
    result = status(play, env)
    assert result.code == 1
    assert result.err == (f"mlops: error: the Kubernetes API at {stub.url} answered 500: "
                          "etcdserver: leader changed\n")
    unknown = status(play, env, "--context", "nope")
    assert unknown.code == 1 and unknown.err.count("\n") == 1
    assert "Kubernetes configuration: " in unknown.err and "nope" in unknown.err


def test_rollout_status_reports_the_same(setup, stub):
    play, env = setup
    head = push(play, {"environments/dev/release.yaml": record(rollout=CANARY)}, "canary")
    stub.put(app(head), ks.inference_service("cancer", "dev", latest=2, previous=1, percent=10))
    out = Output(json_mode=True, stdout=io.StringIO(), stderr=io.StringIO())
    ctx = Context(root=play.clone, out=out, environ={**env, "PATH": ""})
    assert rollout_status(ctx, StatusOptions(env="dev")) == 0
    doc = json.loads(out.stdout.getvalue())
    assert doc == {**status(play, env, "--json").json}
    assert doc["split"]["expected"] == 10 and doc["converged"] is True


def test_status_after_a_real_promotion(play, built, stub, tmp_path):
    """The whole path: mlops promote writes the overlay and release.yaml, status reads them."""
    result = play.proj.run("promote", "--to", "dev", "--build", str(built[1]))
    assert result.code == 0, result.err
    env = {"KUBECONFIG": str(stub.kubeconfig(tmp_path / "kubeconfig")), "HOME": str(tmp_path)}
    head = play.remote_head()
    stub.put(app(head), ks.inference_service("cancer", "dev"))
    doc = play.proj.run("status", "--env", "dev", "--json", env=env).json
    assert doc["converged"] is True
    assert doc["expected"]["revision"] == head
    assert doc["release"] == release_of(play, "dev")["id"]


def test_wait_counts_missing_objects_as_not_converged_until_they_appear(setup, stub):
    """README: with --wait, missing objects count as not converged yet. Nothing is in the
    cluster when the wait begins; Argo CD creates both objects after status's first poll."""
    play, env = setup
    head = play.remote_head()
    stub.after(2, app(head), ks.inference_service("cancer", "dev"))
    started = time.monotonic()
    result = status(play, env, "--json", "--wait", "--timeout", "30")
    assert result.code == 0, result.err
    assert result.json["converged"] is True and result.json["pending"] == []
    assert time.monotonic() - started < 30
    assert len(stub.requests) >= 4  # polled more than once, two objects each time
    assert ("waiting for dev: Argo CD Application argocd/mlops-dev not found; "
            "InferenceService dev/cancer not found") in result.err
    assert "mlops: error" not in result.err


def test_wait_for_objects_that_never_appear_times_out_with_exit_1(setup, stub):
    play, env = setup
    started = time.monotonic()
    result = status(play, env, "--json", "--wait", "--timeout", "1")
    assert result.code == 1
    assert time.monotonic() - started < 15
    doc = result.json  # the report is still printed
    assert doc["converged"] is False and doc["application"] is None and doc["service"] is None
    assert doc["pending"] == ["Argo CD Application argocd/mlops-dev not found",
                              "InferenceService dev/cancer not found"]
    errors = [line for line in result.err.splitlines() if line.startswith("mlops: error:")]
    assert errors == [
        "mlops: error: dev did not converge within 1s: Argo CD Application argocd/mlops-dev "
        "not found; InferenceService dev/cancer not found"]
    assert len(stub.requests) >= 4  # it kept asking: two objects, more than one poll
