"""`mlops rollout analyze` and `rollout run` on real parts: serve containers, Prometheus,
load at the split, and the Kubernetes API stub for the revisions."""

from __future__ import annotations

import time

import pytest

from tests.commands.test_rollout import (
    approve,
    canary_config,
    first_release,
    last_message,
    push_edit,
    release_of,
    rollout,
    to_staging,
)
from tests.support import kubestub
from tests.support.canary import (
    ERROR_RATE_QUERY,
    ERRORS,
    GOOD,
    MEAN_LATENCY_QUERY,
    NAMESPACE,
    REQUESTS_QUERY,
    STABLE,
)
from tests.support.follower import Follower
from tests.support.promotion import Playground, repo_files, ssh_key
from tests.support.services import free_port

pytest_plugins = ["tests.support.canary"]
# serial: its canaries' latencies are the machine's own, so no other test may run beside it
pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.slow, pytest.mark.serial]

ANALYSIS = f"""\
    namespace: {NAMESPACE}
    canary:
      steps: [10, 50]
      analysis:
        metrics:
          - name: error-rate
            query: '{ERROR_RATE_QUERY}'
            max: 0.01
            requests_query: '{REQUESTS_QUERY}'
            min_requests: 15
            interval: 3s
            count: 2
          - name: mean-latency
            query: '{MEAN_LATENCY_QUERY}'
            max_ratio_to_baseline: 2
            no_data: inconclusive
            interval: 3s
            count: 2
"""


@pytest.fixture
def live(project, built, tmp_path, canary_fleet, monkeypatch):
    """A repo whose prod canary is analysed against the fleet's Prometheus."""
    keys = {"alice": ssh_key(tmp_path, "alice")}
    config = canary_config(built[0])
    config = config[:config.index("    canary:\n")] + ANALYSIS + config[
        config.index("approvals:"):]
    files = {**repo_files(built[0]), "mlops.yaml": config,
             ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n"}
    play = Playground(tmp_path, project(files))
    to_staging(play, built, "pvc://models/cancer-v1")
    first_release(play, keys)  # the stable release the canaries are measured against
    to_staging(play, built, "pvc://models/cancer-v2")
    monkeypatch.setenv("MLOPS_PROMETHEUS_URL", canary_fleet.prometheus.url)
    return play, keys, canary_fleet


WARM_UP = 4.0  # seconds of load before analysing: the first window must hold requests


def analyze(play, canary, *extra):
    return rollout(play, "analyze", "--revision", canary, "--baseline-revision", STABLE,
                   "--json", *extra)


def error_rate_only(play) -> None:
    """For tests not about latency: the mean latencies of two equally fast models, measured
    on a busy 2-core machine, can differ 2x by chance, so these judge the canary on its
    error rate alone."""
    def cut(text: str) -> str:
        start = text.index("          - name: mean-latency\n")
        return text[:start] + text[text.index("approvals:"):]
    push_edit(play, "mlops.yaml", cut)


def test_good_canary_passes_and_the_record_goes_into_the_promote_commit(live):
    play, _, fleet = live
    error_rate_only(play)
    assert rollout(play, "start").code == 0
    with fleet.load({STABLE: 0.75, GOOD: 0.25}):
        time.sleep(WARM_UP)
        result = analyze(play, GOOD)
    assert result.code == 0, result.err
    record = result.json
    assert record["result"] == "pass" and record["revision"] == GOOD
    queries = [m["query"] for m in record["measurements"]]
    assert any(f'revision="{GOOD}"' in q and 'namespace="models"' in q for q in queries)
    assert all(m["value"] is not None for m in record["measurements"])
    promoted = rollout(play, "promote", "--json")
    assert promoted.code == 0 and promoted.json["percent"] == 50, promoted.err
    message = last_message(play)
    assert "Mlops-Analysis: pass at 10%" in message
    assert f'query=(sum(rate(serve_inference_requests_total{{namespace="models",revision="{GOOD}"' \
        in message
    again = rollout(play, "promote")  # the record was used up by that commit
    assert again.code == 3 and "no analysis" in again.err


def test_run_aborts_a_failing_canary(live):
    play, _, fleet = live
    v1 = release_of(play, "prod")["id"]  # the first release, at 100%
    assert rollout(play, "start").code == 0
    with fleet.load({STABLE: 0.75, ERRORS: 0.25}):
        time.sleep(WARM_UP)
        result = rollout(play, "run", "--revision", ERRORS, "--baseline-revision", STABLE,
                         "--json")
    assert result.code == 3, result.err
    assert result.json["aborted"]["release"] == v1 and "error-rate" in result.err
    record = release_of(play, "prod")
    assert record["id"] == v1 and record["hold"] and record["rollout"]["state"] == "aborted"


def test_errors_canary_fails_with_exit_3(live):
    play, _, fleet = live
    rollout(play, "start")
    with fleet.load({STABLE: 0.75, ERRORS: 0.25}):
        time.sleep(WARM_UP)
        result = analyze(play, ERRORS)
    assert result.code == 3, result.err
    assert result.json["result"] == "fail" and "error-rate" in result.err


def test_prometheus_down_or_no_traffic_never_passes(live, monkeypatch):
    play, _, _ = live
    rollout(play, "start")
    quiet = analyze(play, GOOD)  # no load: too few requests
    assert quiet.code in (3, 5) and quiet.json["result"] != "pass", quiet.err
    monkeypatch.setenv("MLOPS_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    down = analyze(play, GOOD)
    assert down.code in (3, 5) and down.json["result"] != "pass", down.err
    assert "no answer" in str(down.json["measurements"])


def test_revisions_come_from_the_inference_service_status(live, tmp_path, monkeypatch):
    play, _, fleet = live
    error_rate_only(play)
    rollout(play, "start")
    with kubestub.KubeStub() as stub:
        stub.put(kubestub.inference_service("cancer", NAMESPACE, latest=2, previous=1,
                                            percent=10))
        monkeypatch.setenv("KUBECONFIG", str(stub.kubeconfig(tmp_path / "kubeconfig")))
        with fleet.load({STABLE: 0.75, GOOD: 0.25}):
            time.sleep(WARM_UP)
            result = rollout(play, "analyze", "--json")
    # KServe names revisions <isvc>-predictor-<n>: the fleet's GOOD and STABLE
    assert result.json["revision"] == kubestub.revision_name("cancer", 2) == GOOD, result.err
    assert result.json["baseline_revision"] == kubestub.revision_name("cancer", 1) == STABLE
    assert result.code == 0 and result.json["result"] == "pass", result.err


# -- rollout run waits for the cluster between steps ---------------------------------------
# Argo CD reports the commit it synced in Application status.sync.revision (argo-cd
# pkg/apis/application/v1alpha1/types.go, SyncStatus); KServe the split in
# status.components.predictor.traffic (kserve pkg/apis/serving/v1beta1/
# inference_service_status.go, ComponentStatusSpec.Traffic). The Follower plays both,
# late: it shows each new remote head SYNC_DELAY seconds after the push.

SYNC_DELAY = 2.0


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    with kubestub.KubeStub() as stub:
        monkeypatch.setenv("KUBECONFIG", str(stub.kubeconfig(tmp_path / "kubeconfig")))
        yield stub


def test_run_analyses_each_step_only_once_the_cluster_runs_it(live, cluster):
    play, keys, fleet = live
    error_rate_only(play)
    assert rollout(play, "start").code == 0
    approve(play, keys)  # for the final step, so the run goes all the way
    with Follower(cluster, play.remote, delay=SYNC_DELAY) as follower, \
            fleet.load({STABLE: 0.75, GOOD: 0.25}):
        time.sleep(WARM_UP)
        result = rollout(play, "run", "--sync-timeout", "60s", "--json")
    assert result.code == 0, result.err
    first, second = result.json["steps"]
    assert (first["percent"], first["promoted_to"], second["percent"]) == (10, 50, 50)
    shown = follower.reported[first["commit"]]  # when the cluster showed the 50% step
    # it saw the old commit and split first, then went on only once the new one showed
    assert f"expected {first['commit'][:10]}" in result.err
    assert "latest revision has 10% of traffic, expected 50%" in result.err
    assert shown - first["finished_at"] >= SYNC_DELAY  # the push came before `shown`
    assert second["started_at"] >= first["synced_at"] >= shown
    assert result.json["state"] == "complete" and release_of(play, "prod")["rollout"][
        "state"] == "complete"


def test_run_that_never_sees_its_step_synced_exits_5_and_commits_nothing_more(live, cluster):
    play, _, fleet = live
    error_rate_only(play)
    assert rollout(play, "start").code == 0
    follower = Follower(cluster, play.remote)
    follower.show(play.remote_head())  # synced at 10%, and it stays there: no Follower runs
    before = play.remote_log()
    with fleet.load({STABLE: 0.75, GOOD: 0.25}):
        time.sleep(WARM_UP)
        result = rollout(play, "run", "--sync-timeout", "3s")
    assert result.code == 5, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("mlops: error:")]
    assert len(errors) == 1 and "did not reach 50%" in errors[0], result.err
    assert "latest revision has 10% of traffic, expected 50%" in errors[0]
    after = play.remote_log()
    assert after[1:] == before and "at 50% (step 2/2)" in after[0]  # the step, nothing more
    assert release_of(play, "prod")["rollout"]["percent"] == 50


def test_run_without_a_cluster_refuses_before_committing_a_step(live, tmp_path, monkeypatch):
    play, _, fleet = live
    error_rate_only(play)
    assert rollout(play, "start").code == 0
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    head = play.remote_head()
    with fleet.load({STABLE: 0.75, GOOD: 0.25}):
        time.sleep(WARM_UP)
        result = rollout(play, "run", "--revision", GOOD, "--baseline-revision", STABLE)
    assert result.code == 1 and "no Kubernetes configuration" in result.err, result.err
    assert play.remote_head() == head
