"""Convergence of an environment, from realistic Argo CD and KServe objects (pure logic)."""

from __future__ import annotations

import json

import pytest

from mlops.core import clusterstatus as cs
from mlops.errors import ConfigError
from tests.support import kubestub as ks

HEAD = "3f9c2d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
OLD = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"


def app(**kw):
    args = {"revision": HEAD, "dest_namespace": "dev", "path": "environments/dev"} | kw
    return ks.application("mlops-dev", **args)


def isvc(**kw):
    return ks.inference_service("cancer", "dev", **kw)


def expected(percent=100, revision=HEAD):
    return cs.Expected(revision=revision, percent=percent, application="argocd/mlops-dev",
                       service="dev/cancer")


CANARY_10 = {"latest": 2, "previous": 1, "percent": 10}

# name, application, inference service, expected percent, pending (substrings; none = converged)
TABLE = [
    ("synced and ready", app(), isvc(), 100, []),
    ("out of sync, old revision", app(sync="OutOfSync", revision=OLD), isvc(), 100,
     ["argocd/mlops-dev is OutOfSync", f"Argo CD synced {OLD[:10]}, expected {HEAD[:10]}"]),
    ("synced, but to another commit", app(revision=OLD), isvc(), 100,
     [f"Argo CD synced {OLD[:10]}"]),
    ("degraded", app(health="Degraded"), isvc(), 100, ["Argo CD health is Degraded"]),
    ("progressing", app(health="Progressing", phase="Running"), isvc(), 100,
     ["Argo CD health is Progressing"]),
    ("not ready", app(), isvc(latest=2, previous=1, ready=False), 100,
     ["InferenceService dev/cancer is not Ready (RevisionMissing: Configuration",
      "revision cancer-predictor-00002 is not ready yet"]),
    ("stale status", app(), isvc(stale=True), 100,
     ["InferenceService dev/cancer has not observed its latest spec yet"]),
    ("canary at the expected step", app(), isvc(**CANARY_10), 10, []),
    ("canary not applied yet", app(), isvc(latest=1), 10,
     ["latest revision has 100% of traffic, expected 10%"]),
    ("split mismatch", app(), isvc(**CANARY_10), 25,
     ["latest revision has 10% of traffic, expected 25%"]),
    ("aborted: 0% on the latest", app(), isvc(latest=2, previous=1, percent=0), 0, []),
    ("aborted, but still 10%", app(), isvc(**CANARY_10), 0,
     ["latest revision has 10% of traffic, expected 0%"]),
    ("promoted to 100%", app(), isvc(latest=2, previous=1, percent=100), 100, []),
    ("no application", None, isvc(), 100, ["Argo CD Application argocd/mlops-dev not found"]),
    ("no inference service", app(), None, 100, ["InferenceService dev/cancer not found"]),
]


@pytest.mark.parametrize(("application", "service", "percent", "pending"),
                         [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_convergence_table(application, service, percent, pending):
    summary = cs.summarize(application, service, expected(percent))
    assert summary.converged is (not pending)
    for reason in pending:
        assert any(reason in p for p in summary.pending), (reason, summary.pending)
    assert len(summary.pending) == len(pending)


def test_application_fields_are_read_from_argo_cd_status():
    status = cs.application_status(app(sync="OutOfSync", revision=OLD, health="Degraded",
                                       phase="Failed"), HEAD)
    assert status == cs.AppStatus(sync="OutOfSync", revision=OLD, synced=False,
                                  health="Degraded", health_message=None, operation="Failed")
    assert cs.application_status(app(), HEAD).synced is True


def test_canary_fields_are_read_from_kserve_status():
    status = cs.service_status(isvc(latest=3, previous=2, percent=20))
    assert status.ready and not status.stale
    assert status.url == "http://cancer.dev.example.com"
    assert status.latest_created_revision == status.latest_ready_revision == "cancer-predictor-00003"
    assert status.latest_rolledout_revision == "cancer-predictor-00002"
    assert status.traffic == (
        cs.Traffic("cancer-predictor-00003", 20, True, "latest"),
        cs.Traffic("cancer-predictor-00002", 80, False, "prev"),
    )
    assert [c.type for c in status.conditions] == [
        "IngressReady", "PredictorConfigurationReady", "PredictorReady", "PredictorRouteReady",
        "Ready"]
    promoted = cs.service_status(isvc(latest=3, previous=2))
    assert promoted.latest_rolledout_revision == "cancer-predictor-00003"
    assert promoted.previous_rolledout_revision == "cancer-predictor-00002"


def test_split_reports_observed_and_expected():
    summary = cs.summarize(app(), isvc(**CANARY_10), expected(25))
    assert summary.split == cs.Split(expected=25, observed=10, as_expected=False)


def test_raw_deployment_without_traffic_block_counts_as_full_rollout_only():
    raw = isvc()
    del raw["status"]["components"]["predictor"]["traffic"]
    assert cs.summarize(app(), raw, expected(100)).converged
    held = cs.summarize(app(), raw, expected(10))
    assert held.split.observed is None
    assert held.pending == ("no traffic split is reported (not serverless?), expected 10% on "
                            "the latest revision",)


def test_multi_source_application_uses_its_first_revision():
    multi = app()
    sync = multi["status"]["sync"]
    sync["revisions"] = [sync.pop("revision"), OLD]
    assert cs.application_status(multi, HEAD).revision == HEAD


@pytest.mark.parametrize(("actual", "wanted", "same"), [
    (HEAD, HEAD, True),
    (HEAD, HEAD[:7], True),
    (HEAD[:12], HEAD, True),
    (HEAD, HEAD[:6], False),  # too short to mean one commit
    (OLD, HEAD, False),
    (None, HEAD, False),
    ("", "", False),
])
def test_same_revision(actual, wanted, same):
    assert cs.same_revision(actual, wanted) is same


@pytest.mark.parametrize(("rollout", "percent"), [
    (None, 100),
    ({}, 100),
    ({"state": "canary", "percent": 10, "step": 1, "steps": 3}, 10),
    ({"state": "canary", "percent": 0}, 0),
    ({"state": "aborted", "percent": 30}, 0),
    ({"state": "complete", "percent": 100}, 100),
])
def test_expected_percent(rollout, percent):
    assert cs.expected_percent(rollout) == percent


@pytest.mark.parametrize(("rollout", "message"), [
    ({"state": "paused"}, "rollout.state 'paused' is not one of canary, complete, aborted"),
    ({"state": "canary", "percent": 150}, "rollout.percent must be 0..100, got 150"),
    ({"state": "canary", "percent": True}, "rollout.percent must be 0..100, got True"),
    ({"state": "canary"}, "rollout.percent must be 0..100, got None"),
])
def test_expected_percent_refuses_a_malformed_rollout(rollout, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        cs.expected_percent(rollout)


def test_summary_document_is_json():
    summary = cs.summarize(app(sync="OutOfSync"), isvc(**CANARY_10), expected(10))
    doc = json.loads(json.dumps(summary.as_dict()))
    assert doc["converged"] is False
    assert doc["pending"] == ["Argo CD Application argocd/mlops-dev is OutOfSync"]
    assert doc["split"] == {"expected": 10, "observed": 10, "as_expected": True}
    assert doc["service"]["traffic"][0] == {"revision_name": "cancer-predictor-00002",
                                            "percent": 10, "latest_revision": True,
                                            "tag": "latest"}
    assert doc["application"]["revision"] == HEAD
