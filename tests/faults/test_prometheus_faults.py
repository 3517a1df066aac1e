"""`mlops rollout analyze` / `rollout run` when Prometheus misbehaves: a FaultProxy
between mlops and a real Prometheus.

Prometheus scrapes itself twice, labelled as the canary and the baseline
revision, so `up` is 1 for both: a healthy canary whose every check passes when
the answers arrive. Transient faults are retried and the analysis passes, with
the values Prometheus itself gives (asked directly). Persistent faults never
pass: the analysis is inconclusive (exit 5, the metrics' `no_data` policy),
with one line on stderr, no token anywhere, and nothing changed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from mlops.adapters.metrics import Prometheus
from tests.conftest import git
from tests.support.faultproxy import FaultProxy
from tests.support.faultrig import Rig, error_line, private_tempdir, release_repo
from tests.support.services import PrometheusServer
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

NAMESPACE, CANARY, STABLE = "models", "cancer-predictor-00002", "cancer-predictor-00001"
TOKEN = "pl4nted-prom3theus-t0ken"  # noqa: S105 - planted to prove it is never printed
UP = 'sum(up{namespace="{{ namespace }}",revision="{{ revision }}"})'
SCRAPES = 'sum(scrape_samples_scraped{namespace="{{ namespace }}",revision="{{ revision }}"})'
PROD = f"""\
    namespace: {NAMESPACE}
    canary:
      steps: [10, 50]
      analysis:
        metrics:
          - name: up
            query: '{UP}'
            min: 1
            requests_query: '{SCRAPES}'
            min_requests: 1
            no_data: inconclusive
          - name: up-vs-baseline
            query: '{UP}'
            max_ratio_to_baseline: 1.5
            no_data: inconclusive
"""
FAST = {"MLOPS_PROMETHEUS_TIMEOUT": "0.5", "MLOPS_PROMETHEUS_RETRIES": "4",
        "MLOPS_PROMETHEUS_TOKEN": TOKEN}
FOR_GOOD = {**FAST, "MLOPS_PROMETHEUS_RETRIES": "2"}
# A query answer's head is ~150 bytes: 60 is mid-answer.
TRANSIENT = {
    "reset": lambda p: p.reset_first(2),
    "reset-mid-transfer": lambda p: p.reset_mid_transfer_first(2, 60),
    "slow": lambda p: p.delay_first(1, 2.0),
    "503": lambda p: p.http_status_first(2, 503),
}
PERSISTENT = {
    "refused": (lambda p: p.down(), "connection refused"),
    "reset": (lambda p: p.reset_first(1000), "connection"),
    "reset-mid-transfer": (lambda p: p.reset_mid_transfer_first(1000, 60), "connection"),
    "slow": (lambda p: p.delay(5.0), "no answer within the timeout"),
    "503": (lambda p: p.http_status_first(1000, 503), "HTTP 503"),
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus scraping itself as the canary and as the baseline revision."""
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), interval="1s")
    me = [f"127.0.0.1:{server.port}"]
    server.groups = [(me, {"namespace": NAMESPACE, "revision": rev}) for rev in (CANARY, STABLE)]
    server.start()
    try:
        client, deadline = Prometheus(server.url), time.monotonic() + 30
        while (client.query(f'count(up{{namespace="{NAMESPACE}"}} == 1)') or 0) < 2:
            assert time.monotonic() < deadline, "Prometheus never scraped itself"
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def canary(registry_server, prometheus, tmp_path_factory):
    """A remote whose prod runs a canary at 10% against a first release at 100%."""
    rig = Rig(tmp_path_factory.mktemp("canary"),
              release_repo(f"{registry_server.host}/prom{uuid.uuid4().hex[:8]}", prod=PROD))
    build = rig.base / "build.json"
    rig.mlops("build", "--output", str(build))
    for model in ("pvc://models/m1", "pvc://models/m2"):  # m1 the first release, at 100%
        rig.mlops("promote", "--to", "dev", "--build", str(build), "--model-uri", model)
        rig.mlops("promote", "--to", "staging", "--from", "dev")
        rig.mlops("rollout", "start", "--env", "prod")  # m2 then a canary, against m1
    git(rig.clone, "pull", "-q", "--ff-only", "origin", "main")
    return rig


@pytest.fixture
def proxy(prometheus, tmp_path, monkeypatch):
    private_tempdir(tmp_path, monkeypatch)
    with FaultProxy(("127.0.0.1", prometheus.port)) as p:
        monkeypatch.setenv("MLOPS_PROMETHEUS_URL", f"http://{p.address}")
        yield p


def analyze(canary, capsys, monkeypatch, env, verb="analyze", *extra):
    proj = canary.project(capsys, monkeypatch)
    return proj.run("rollout", verb, "--env", "prod", "--revision", CANARY,
                    "--baseline-revision", STABLE, "--json", *extra, env=env)


def no_secret(result, *files):
    for text in (result.out, result.err, *(f.read_text() for f in files)):
        assert TOKEN not in text


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_transient_prometheus_fault_is_retried(fault, proxy, canary, prometheus, tmp_path,
                                               capsys, monkeypatch):
    TRANSIENT[fault](proxy)
    out = tmp_path / "decision.json"
    result = analyze(canary, capsys, monkeypatch, FAST, "analyze", "--output", str(out))
    assert result.code == 0, result.err
    assert proxy.faults_injected >= 1
    decision = json.loads(out.read_text())
    assert decision["result"] == "pass", decision
    direct = Prometheus(prometheus.url)  # the real service, not through the proxy
    for m in decision["measurements"]:
        assert m["verdict"] == "pass" and m["value"] == direct.query(m["query"]) == 1, m
        if m["baseline_query"]:
            assert direct.query(m["baseline_query"]) == 1
    no_secret(result, out)


def test_prometheus_refusing_connections_for_a_while(proxy, canary, capsys, monkeypatch):
    proxy.down()
    timer = threading.Timer(1.0, proxy.up)
    timer.start()
    try:
        result = analyze(canary, capsys, monkeypatch,
                         {**FAST, "MLOPS_PROMETHEUS_RETRIES": "8"})
    finally:
        timer.join()
    assert result.code == 0, result.err
    assert result.json["result"] == "pass"


@pytest.mark.parametrize("verb", ["analyze", "run"])
@pytest.mark.parametrize("fault", sorted(PERSISTENT))
def test_persistent_prometheus_fault_is_never_a_pass(fault, verb, proxy, canary, tmp_path,
                                                     capsys, monkeypatch):
    arm, reason = PERSISTENT[fault]
    before = Snapshot.take(repo=canary.clone, remote=canary.remote)
    arm(proxy)
    result = analyze(canary, capsys, monkeypatch, FOR_GOOD, verb)
    assert result.code == 5, result.err
    line = error_line(result)
    assert line.startswith("mlops: error: canary analysis inconclusive: up: no data, so it cannot pass: no answer: "
                           f"Prometheus at http://{proxy.address} unavailable after 2 "
                           "attempt(s): "), line
    assert reason in line, line
    doc = result.json
    steps = doc["steps"] if verb == "run" else [doc]
    assert [s.get("analysis", s.get("result")) for s in steps] == ["inconclusive"]
    no_secret(result)
    before.assert_same(Snapshot.take(repo=canary.clone, remote=canary.remote))
