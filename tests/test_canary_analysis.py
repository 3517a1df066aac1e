"""Canary analysis on real parts: the real serve image, real traffic, a real Prometheus.

Five serve containers (tests.support.canary) stand for the revisions of one
InferenceService: the stable one and canaries that are healthy, answer
errors, answer slowly, or get no traffic. The analysis is configured as a
user would configure it, and its verdict must follow what the servers did.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from mlops.adapters.metrics import Prometheus
from mlops.analysis_run import AnalysisReport, run_analysis, schedule
from mlops.canaryconfig import AnalysisMetric
from mlops.config import load_config
from mlops.core.analysis import FAIL, INCONCLUSIVE, PASS
from mlops.records import replace
from tests.support.canary import (
    ERROR_RATE_QUERY,
    ERRORS,
    GOOD,
    IDLE,
    LOAD_RATE,
    MEAN_LATENCY_QUERY,
    NAMESPACE,
    REPO_ROOT,
    REQUESTS_QUERY,
    SERVICE,
    SLOW,
    STABLE,
    Load,
    revision_prometheus,
)
from tests.support.services import PrometheusServer

# The fixtures (serve_image, canary_models, canary_fleet), registered once per session.
pytest_plugins = ["tests.support.canary"]

# canary_fleet needs docker_engine and Prometheus; its slow model's latency is the
# machine's own, so no other test may run beside it
pytestmark = [pytest.mark.slow, pytest.mark.serial]

INTERVAL, COUNT = 3.0, 2
LATENCY_FLOOR = 0.01  # the clamp_min of MEAN_LATENCY_QUERY
WARMUP = INTERVAL + 2.5  # a whole window of traffic, scraped, before the first measurement
CANARY_SHARE = 0.25  # of 40 requests/s: ~30 per window; the slow canary stays below
# saturation, where its /metrics would time out and the test would be about that

METRICS = (
    AnalysisMetric("error-rate", ERROR_RATE_QUERY, max=0.01, requests_query=REQUESTS_QUERY,
                   min_requests=15, no_data=FAIL, interval=INTERVAL, count=COUNT),
    AnalysisMetric("latency", MEAN_LATENCY_QUERY, max_ratio_to_baseline=2.0,
                   requests_query=REQUESTS_QUERY, min_requests=15, no_data=INCONCLUSIVE,
                   interval=INTERVAL, count=COUNT),
)


def analyse(fleet, revision: str, url: str | None = None, **client) -> AnalysisReport:
    prometheus = Prometheus(url or fleet.prometheus.url, **client)
    print(f"analysis of {revision}:")  # shown with a failure's captured output
    return run_analysis(METRICS, prometheus.query, fleet.values(revision), progress=print)


def explain(report: AnalysisReport, load: Load | None = None) -> str:
    counts = {url: dict(c) for url, c in load.counts.items()} if load else None
    return json.dumps({"report": report.as_dict(), "load": counts}, indent=1)


def under_load(fleet, canary: str, share: float = CANARY_SHARE) -> tuple[AnalysisReport, Load]:
    with fleet.load({STABLE: 1 - share, canary: share}) as load:
        time.sleep(WARMUP)
        return analyse(fleet, canary), load


def verdicts(report: AnalysisReport) -> dict[str, str]:
    return {v.metric: v.result for v in report.verdicts}


def test_a_healthy_canary_passes(canary_fleet):
    assert canary_fleet.models.scores["good"] > 0.9  # a normally trained model
    report, load = under_load(canary_fleet, GOOD)
    assert report.result == PASS, explain(report, load)
    assert {m.measurement.verdict for m in report.readings} == {PASS}
    assert set(load.counts[canary_fleet[GOOD].url]) == {200}
    latency = report.readings[1]
    assert 'revision="cancer-predictor-00002"' in latency.queries.query
    assert 'revision="cancer-predictor-00001"' in latency.queries.baseline
    assert '[3s]' in latency.queries.query


def test_a_canary_that_answers_errors_fails(canary_fleet):
    report, load = under_load(canary_fleet, ERRORS)
    assert set(load.counts[canary_fleet[ERRORS].url]) == {400}  # 30 features, wants 31
    assert report.result == FAIL, explain(report, load)
    assert verdicts(report)["error-rate"] == FAIL
    errors = [r.measurement for r in report.readings if r.measurement.metric == "error-rate"]
    # failure_limit 0: the first failed measurement settles it (as Argo Rollouts does)
    assert [m.value for m in errors] == [1.0] and report.stopped_early, explain(report, load)
    assert all((m.requests or 0) >= 15 for m in errors)  # failed on evidence, not for lack of it


def median_seconds(container, rows, n: int = 10) -> float:
    return statistics.median(container.predict(rows[:1])[1] for _ in range(n))


def test_a_slow_canary_fails_against_the_stable_revision(canary_fleet):
    rows = canary_fleet.models.rows
    stable, slow = (median_seconds(canary_fleet[r], rows) for r in (STABLE, SLOW))
    print(f"median of one request: stable {stable:.4f}s, slow {slow:.4f}s")
    assert slow > 5 * stable, f"the slow model is not slow: {slow:.4f}s vs {stable:.4f}s"
    # The query counts anything under 10 ms as 10 ms, so the limit is 2 x 10 ms;
    # a slow model near 20 ms would pass or fail by chance (it did, at 500 trees).
    # Its server answers /metrics on the loop that predicts, and near saturation the
    # scrapes time out and the test is about that instead: on a busy machine (slower
    # predictions) it gets fewer requests, keeping its loop at most 60% busy, as long
    # as that still leaves the 15 requests a window the analysis needs.
    assert MEAN_LATENCY_QUERY.endswith(f", {LATENCY_FLOOR})")
    assert slow > 2.5 * LATENCY_FLOOR, f"the slow model is too near the limit: {slow:.4f}s"
    share = min(CANARY_SHARE, 0.6 / (slow * LOAD_RATE))
    per_window = share * LOAD_RATE * INTERVAL
    assert per_window >= 16, f"the slow model takes {slow:.4f}s a request: too busy a machine"
    report, load = under_load(canary_fleet, SLOW, share)
    assert report.result == FAIL, explain(report, load)
    # latency fails at once; error-rate, cut short, proved nothing either way
    assert verdicts(report) == {"error-rate": INCONCLUSIVE, "latency": FAIL}, \
        explain(report, load)
    assert report.stopped_early and "x baseline" in report.reasons[0]


def test_a_canary_without_traffic_never_passes(canary_fleet):
    prometheus = Prometheus(canary_fleet.prometheus.url)
    assert prometheus.query(f'sum(up{{revision="{IDLE}"}})') == 1  # alive and scraped
    with canary_fleet.load({STABLE: 1.0}) as load:
        report = analyse(canary_fleet, IDLE)
    assert report.result in (FAIL, INCONCLUSIVE), explain(report, load)
    assert {r.measurement.verdict for r in report.readings} == {"no-data"}


def test_with_prometheus_stopped_a_healthy_canary_never_passes(canary_fleet, tmp_path):
    server = revision_prometheus(tmp_path, [canary_fleet[STABLE], canary_fleet[GOOD]])
    assert Prometheus(server.url).query("vector(1)") == 1  # it was answering
    server.stop()
    with canary_fleet.load({STABLE: 1 - CANARY_SHARE, GOOD: CANARY_SHARE}) as load:
        report = analyse(canary_fleet, GOOD, server.url, attempts=2, timeout=2)
    assert report.result in (FAIL, INCONCLUSIVE), explain(report, load)
    details = {r.measurement.detail for r in report.readings}
    assert all("unavailable" in d for d in details), details


def test_the_readme_example_is_what_these_tests_ran(tmp_path):
    readme = (REPO_ROOT / "components" / "README.md").read_text()
    section = readme.split("### Canary analysis queries", 1)[1]
    (tmp_path / "mlops.yaml").write_text("registry: 127.0.0.1:5000/x\n"
                                         + section.split("```yaml\n", 1)[1].split("```", 1)[0])
    prod = load_config(tmp_path, environ={}).environments[0]
    documented = [(m.name, m.query, m.requests_query, m.max, m.max_ratio_to_baseline, m.no_data)
                  for m in prod.canary.metrics]
    assert documented == [(m.name, m.query, m.requests_query, m.max, m.max_ratio_to_baseline,
                           m.no_data) for m in METRICS]


# -- stopping as soon as a pass is impossible ---------------------------------------------
# As Argo Rollouts does (argoproj/argo-rollouts analysis/analysis.go: a metric is Failed once
# failed > failureLimit; utils/analysis/helpers.go IsTerminating: a Failed or Inconclusive
# metric ends the run) and Flagger (fluxcd/flagger pkg/controller/scheduler.go: roll back
# once FailedChecks reach the threshold). Timing is compared within each test, as ratios.

LIMIT, LONG = 1, 4  # one failure tolerated, four measurements planned (three intervals)
STRICT = replace(METRICS[0], count=LONG, failure_limit=LIMIT)


def timed(url, metrics, revision, **client) -> tuple[AnalysisReport, float]:
    values = {"service": SERVICE, "namespace": NAMESPACE, "revision": revision,
              "baseline_revision": STABLE}
    start = time.monotonic()
    report = run_analysis(metrics, Prometheus(url, **client).query, values, progress=print)
    return report, time.monotonic() - start


def test_a_failing_canary_stops_after_failure_limit_plus_one_measurements(canary_fleet):
    split = {STABLE: 0.5, ERRORS: CANARY_SHARE, GOOD: CANARY_SHARE}
    with canary_fleet.load(split) as load:
        time.sleep(WARMUP)
        failing, failing_s = timed(canary_fleet.prometheus.url, [STRICT], ERRORS)
        healthy, healthy_s = timed(canary_fleet.prometheus.url, [STRICT], GOOD)  # the same schedule, whole
    assert set(load.counts[canary_fleet[ERRORS].url]) == {400}
    assert healthy.result == PASS and len(healthy.readings) == LONG, explain(healthy, load)
    assert failing.result == FAIL, explain(failing, load)
    assert len(failing.readings) == LIMIT + 1
    assert [r.measurement.verdict for r in failing.readings] == [FAIL] * (LIMIT + 1)
    record = failing.as_dict()
    assert record["stopped_early"] is True and record["measurements_planned"] == LONG
    assert record["stop_reason"].startswith("error-rate: 2 failed measurements in a row")
    # LIMIT intervals instead of LONG - 1: about a third of the healthy run's time
    ratio = failing_s / healthy_s
    print(f"failing {failing_s:.2f}s, healthy {healthy_s:.2f}s, ratio {ratio:.2f}")
    assert (LIMIT - 0.5) / (LONG - 1) < ratio < (LIMIT + 1) / (LONG - 1), explain(failing)


@pytest.mark.parametrize(("no_data", "result", "taken"), [(FAIL, FAIL, LIMIT + 1),
                                                            (INCONCLUSIVE, INCONCLUSIVE, 1)])
def test_an_unreachable_prometheus_stops_early_per_no_data(tmp_path, no_data, result, taken):
    server = PrometheusServer(tmp_path).start()
    assert Prometheus(server.url).query("vector(1)") == 1  # it was answering
    server.stop()
    metric = replace(STRICT, no_data=no_data)
    report, seconds = timed(server.url, [metric], GOOD, attempts=2, timeout=2)
    assert report.result == result, explain(report)
    assert len(report.readings) == taken and report.stopped_early
    assert all("unavailable" in r.measurement.detail for r in report.readings)
    # it waited `taken - 1` intervals of the schedule's LONG - 1, not the whole schedule
    whole = schedule([metric])[-1][0]
    assert seconds < whole * taken / (LONG - 1), (seconds, whole)
