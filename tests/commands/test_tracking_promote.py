"""`mlops promote` mirrored into a real MLflow server: the alias named after each environment
lands on the model version of the release, after the promotion commit; MLflow out of
reach is a warning, never a lost or failed promotion (git first, the mirror second)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from mlops import config as cfg
from mlops.services import tracking
from tests.commands.conftest import GOOD, release_of
from tests.services.test_tracking import record
from tests.support.promotion import Playground, repo_files, ssh_key
from tests.support.services import free_port

pytestmark = pytest.mark.usefixtures("docker_engine")


@pytest.fixture
def tracked(project, built, tmp_path, mlflow_server):
    """A playground whose mlops.yaml names a registered model, alice as a release manager
    with her key listed, and two runs of that model logged to MLflow."""
    model = f"cancer-{uuid.uuid4().hex[:8]}"
    key, public = ssh_key(tmp_path, "alice")
    files = repo_files(built[0])
    files["mlops.yaml"] = f"{files['mlops.yaml']}tracking:\n  model: {model}\n"
    files[".mlops/allowed_signers"] = f"alice@example.com {public}\n"
    play = Playground(tmp_path, project(files))
    settings = cfg.Tracking(uri=mlflow_server.url, model=model)
    uris, versions = [], []
    for n in (1, 2):
        uri = f"s3://models/{model}/{n}"
        logged = tracking.log_run(settings, record(f"20260101T12000{n}-00000{n}", uri))
        assert logged is not None and logged.ok, logged
        uris.append(uri)
        versions.append(logged.detail["version"])
    return play, model, uris, versions, key


def run(play, server_url: str, *args: str):
    return play.proj.run("promote", *args, "--json", env={"MLFLOW_TRACKING_URI": server_url})


def test_each_promotion_sets_its_environments_alias(tracked, built, mlflow_server):
    play, model, uris, versions, key = tracked
    url = mlflow_server.url
    dev = run(play, url, "--to", "dev", "--build", str(built[1]), "--model-uri", uris[0])
    assert dev.code == 0, dev.err
    assert dev.json["tracking"] == {"ok": True, "alias": "dev",
                                    "models": [{"name": model, "version": versions[0]}]}
    assert mlflow_server.alias(model, "dev") == versions[0]

    staging = run(play, url, "--to", "staging", "--from", "dev",
                  "--metrics", str(play.metrics("m", GOOD)))
    assert staging.code == 0, staging.err
    assert mlflow_server.alias(model, "staging") == versions[0]

    release = release_of(play, "staging")["id"]
    approval = play.proj.run("approve", "--env", "prod", "--release", release, "--key", str(key),
                             "--principal", "alice@example.com")
    assert approval.code == 0, approval.err
    prod = run(play, url, "--to", "prod", "--from", "staging")
    assert prod.code == 0, prod.err
    assert prod.json["approver"] == "alice@example.com" and prod.json["tracking"]["ok"]
    assert mlflow_server.alias(model, "prod") == versions[0]

    # a newer model through dev and staging: their aliases move, prod's stays
    play.pull()
    newer = run(play, url, "--to", "dev", "--build", str(built[1]), "--model-uri", uris[1],
                "--metrics", str(play.metrics("m2", {**GOOD, "accuracy": 0.96})))
    assert newer.code == 0, newer.err
    assert run(play, url, "--to", "staging", "--from", "dev").code == 0
    assert mlflow_server.alias(model, "dev") == versions[1]
    assert mlflow_server.alias(model, "staging") == versions[1]
    assert mlflow_server.alias(model, "prod") == versions[0]
    text = play.proj.run("promote", "--to", "staging", "--from", "dev",
                         env={"MLFLOW_TRACKING_URI": url})
    # Nothing landed, but the alias is set again (the way to repair one MLflow missed).
    assert text.code == 0 and "already runs" in text.out
    assert mlflow_server.alias(model, "staging") == versions[1]


def test_mlflow_out_of_reach_warns_and_the_promotion_stands(tracked, built, mlflow_server):
    play, model, uris, versions, _ = tracked
    down = f"http://user:s3cret@127.0.0.1:{free_port()}"
    head = play.remote_head()
    result = run(play, down, "--to", "dev", "--build", str(built[1]), "--model-uri", uris[0])
    assert result.code == 0, result.err
    assert play.remote_head() == result.json["commit"] != head
    assert release_of(play, "dev")["model_uri"] == uris[0]  # the promotion landed
    assert result.json["status"] == "promoted"
    mirrored = result.json["tracking"]
    assert mirrored["ok"] is False and mirrored["alias"] == "dev"
    assert "unreachable" in mirrored["error"] and "s3cret" not in mirrored["error"]
    warnings = [line for line in result.err.splitlines() if "MLflow" in line]
    assert warnings == [f"warning: MLflow not updated (alias dev): {mirrored['error']}"]
    assert "s3cret" not in result.err
    assert mlflow_server.alias(model, "dev") is None  # nothing was mirrored

    # the same promotion again, MLflow back: nothing changes in git, the alias is repaired
    again = run(play, mlflow_server.url, "--to", "dev", "--build", str(built[1]),
                "--model-uri", uris[0])
    assert again.code == 0, again.err
    assert again.json["status"] == "unchanged" and play.remote_head() == result.json["commit"]
    assert again.json["tracking"] == {"ok": True, "alias": "dev",
                                      "models": [{"name": model, "version": versions[0]}]}
    assert mlflow_server.alias(model, "dev") == versions[0]


def test_a_rollback_moves_the_alias_back(tracked, built, mlflow_server):
    play, model, uris, versions, _ = tracked
    url = mlflow_server.url
    first = run(play, url, "--to", "dev", "--build", str(built[1]), "--model-uri", uris[0])
    assert first.code == 0, first.err
    play.pull()
    second = run(play, url, "--to", "dev", "--build", str(built[1]), "--model-uri", uris[1],
                 "--metrics", str(play.metrics("m2", {**GOOD, "accuracy": 0.96})))
    assert second.code == 0, second.err
    assert mlflow_server.alias(model, "dev") == versions[1]
    play.pull()

    back = play.proj.run("rollback", "--env", "dev", "--json", env={"MLFLOW_TRACKING_URI": url})
    assert back.code == 0, back.err
    assert back.json["release"] == first.json["release"]
    assert back.json["tracking"] == {"ok": True, "alias": "dev",
                                     "models": [{"name": model, "version": versions[0]}]}
    assert mlflow_server.alias(model, "dev") == versions[0]
    human = play.proj.run("rollback", "--env", "dev", "--to", second.json["release"],
                          env={"MLFLOW_TRACKING_URI": url})
    assert human.code == 0, human.err
    assert f"mlflow: alias dev -> {model} version {versions[1]}" in human.out
    assert mlflow_server.alias(model, "dev") == versions[1]


PROBE = """
import sys
import mlops.cli
code = mlops.cli.main(["promote", "--to", "dev", "--build", sys.argv[2], "--repo", sys.argv[1]])
print("--- mlflow loaded:", code, any(m == "mlflow" or m.startswith("mlflow.")
                                     for m in sys.modules))
"""


def test_a_promotion_without_the_setting_never_imports_mlflow(play, built):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(play.clone), str(built[1])],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rpartition("--- mlflow loaded:")[2].split() == ["0", "False"]
    assert release_of(play, "dev")["images"]  # it did promote


def test_a_canary_moves_the_alias_only_when_it_reaches_100_percent(
        project, built, tmp_path, mlflow_server, monkeypatch):
    from tests.commands.test_rollout import approve, canary_config, passing, rollout, to_staging

    model = f"canary-{uuid.uuid4().hex[:8]}"
    keys = {"alice": ssh_key(tmp_path, "alice")}
    files = {**repo_files(built[0]),
             "mlops.yaml": f"{canary_config(built[0])}tracking:\n  model: {model}\n",
             ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n"}
    play = Playground(tmp_path, project(files))
    settings = cfg.Tracking(uri=mlflow_server.url, model=model)
    versions = {}
    for n in (1, 2):
        uri = f"pvc://models/{model}-v{n}"
        logged = tracking.log_run(settings, record(f"20260101T13000{n}-00000{n}", uri))
        assert logged is not None and logged.ok, logged
        versions[uri] = logged.detail["version"]
    v1, v2 = versions
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)

    to_staging(play, built, v1)
    approve(play, keys, release=release_of(play, "staging")["id"])
    first = rollout(play, "start", "--json")  # a first release: 100% at once
    assert first.code == 0 and first.json["status"] == "complete", first.err
    assert first.json["tracking"]["ok"] and mlflow_server.alias(model, "prod") == versions[v1]

    to_staging(play, built, v2)
    assert mlflow_server.alias(model, "staging") == versions[v2]
    started = rollout(play, "start", "--json")
    assert started.code == 0 and started.json["percent"] == 10, started.err
    assert "tracking" not in started.json
    step = rollout(play, "promote", "--analysis", passing(play), "--json")
    assert step.code == 0 and step.json["percent"] == 50, step.err
    assert mlflow_server.alias(model, "prod") == versions[v1]  # a canary is not the release yet
    approve(play, keys)
    final = rollout(play, "promote", "--analysis", passing(play, (50, 2)), "--json")
    assert final.code == 0 and final.json["state"] == "complete", final.err
    assert final.json["tracking"] == {"ok": True, "alias": "prod",
                                      "models": [{"name": model, "version": versions[v2]}]}
    assert mlflow_server.alias(model, "prod") == versions[v2]
