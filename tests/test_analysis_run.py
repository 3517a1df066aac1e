"""The analysis loop on a fake timeline, with Prometheus' answers given as a table.

The table maps each PromQL string, exactly as rendered, to what Prometheus
would answer: a number, None (no series), an error, or a list of answers in
turn. It is the test's input; the real Prometheus is in test_canary_analysis.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from mlops.adapters.metrics import PrometheusError
from mlops.analysis_run import render_queries, run_analysis, schedule
from mlops.canaryconfig import AnalysisMetric
from mlops.core import analysis as a
from mlops.errors import ConfigError
from mlops.records import replace

VALUES = {"service": "cancer-predictor", "namespace": "models",
          "revision": "cancer-predictor-00002", "baseline_revision": "cancer-predictor-00001"}
ERRORS = AnalysisMetric(
    "error-rate", 'errors{revision="{{ revision }}"}[{{ interval }}]', max=0.01,
    requests_query='requests{revision="{{ revision }}"}[{{ interval }}]', min_requests=20,
    interval=30, count=3)
LATENCY = AnalysisMetric("p95", 'p95{revision="{{ revision }}"}[{{ interval }}]',
                         max_ratio_to_baseline=1.5, no_data="inconclusive", interval=45.5,
                         count=2)
E_Q, E_R = 'errors{revision="cancer-predictor-00002"}[30s]', 'requests{revision="cancer-predictor-00002"}[30s]'
L_Q, L_B = 'p95{revision="cancer-predictor-00002"}[46s]', 'p95{revision="cancer-predictor-00001"}[46s]'


class Answers:
    """Prometheus' answers by query; a list is answered in turn. Records what was asked."""

    def __init__(self, table):
        self.table = {q: list(a) if isinstance(a, list) else a for q, a in table.items()}
        self.asked: list[str] = []

    def __call__(self, promql: str):
        self.asked.append(promql)
        answer = self.table[promql]
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Timeline:
    """A monotonic clock that only sleeping moves; wall time is 1.7e9 + that."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def run(self, metrics, answers, **kwargs):
        return run_analysis(metrics, answers, VALUES, sleep=self.sleep, clock=lambda: self.now,
                            wall=lambda: 1.7e9 + self.now, **kwargs)


GOOD = {E_Q: 0.0, E_R: 100.0, L_Q: 0.11, L_B: 0.1}


def test_schedule_merges_every_metric_on_one_timeline():
    assert schedule([ERRORS, LATENCY]) == [(0, 0, 1), (0, 1, 1), (30, 0, 2), (45.5, 1, 2),
                                           (60, 0, 3)]


def test_measurements_follow_the_schedule_and_the_first_is_immediate():
    clock, answers, lines = Timeline(), Answers(GOOD), []
    report = clock.run([ERRORS, LATENCY], answers, progress=lines.append)
    assert clock.sleeps == [30, 15.5, 14.5]
    assert [(r.measurement.metric, r.index) for r in report.readings] == [
        ("error-rate", 1), ("p95", 1), ("error-rate", 2), ("p95", 2), ("error-rate", 3)]
    assert answers.asked[:5] == [E_Q, E_R, L_Q, L_B, E_Q]  # value, baseline, requests
    assert lines[0] == "error-rate 1/3: 0 (pass)"
    assert lines[3] == "p95 2/2: 0.11 (pass)"
    assert report.result == "pass"


def test_slow_queries_shorten_the_next_wait_instead_of_drifting():
    clock = Timeline()

    def slow(promql):
        clock.now += 4  # every query takes 4 s
        return GOOD[promql]

    run_analysis([ERRORS], slow, VALUES, sleep=clock.sleep, clock=lambda: clock.now)
    assert clock.sleeps == [22, 22]  # 30 s apart, minus the 8 s the two queries took


def test_baseline_query_is_the_same_template_on_the_baseline_revision():
    queries = render_queries(LATENCY, VALUES)
    assert (queries.query, queries.baseline, queries.requests) == (L_Q, L_B, None)
    with pytest.raises(ConfigError, match="no baseline revision"):
        render_queries(LATENCY, {**VALUES, "baseline_revision": ""})
    with pytest.raises(ConfigError, match="not a plain name"):
        render_queries(ERRORS, {**VALUES, "revision": 'x"} or vector(1)'})


def test_a_canary_slower_than_the_baseline_fails():
    report = Timeline().run([LATENCY], Answers({**GOOD, L_Q: [0.11, 0.3]}))
    assert report.result == "fail"
    assert report.reasons == ("p95: 1 failed measurements in a row (limit 0): "
                              "0.3 > 1.5 x baseline 0.1",)


@pytest.mark.parametrize(("metric", "result"), [(ERRORS, "fail"), (LATENCY, "inconclusive")])
def test_prometheus_errors_are_no_data_never_a_pass(metric, result):
    down = PrometheusError("Prometheus at http://127.0.0.1:9 unavailable: ConnectionError")
    report = Timeline().run([metric], Answers({E_Q: down, E_R: down, L_Q: down, L_B: down}))
    assert report.result == result
    assert {r.measurement.verdict for r in report.readings} == {"no-data"}
    assert report.readings[0].measurement.detail == f"no answer: {down}"


def test_an_error_midway_keeps_what_was_seen():
    down = PrometheusError("query failed: timeout")
    report = Timeline().run([LATENCY], Answers({L_Q: 0.12, L_B: [0.1, down]}))
    first, second = (r.measurement for r in report.readings)
    assert (first.verdict, first.value, first.baseline) == ("pass", 0.12, 0.1)
    assert (second.verdict, second.value, second.baseline) == ("no-data", 0.12, None)
    assert second.detail == "no answer: query failed: timeout"
    assert report.result == "inconclusive"  # a gap with no_data: inconclusive holds


def test_too_little_traffic_is_no_data():
    report = Timeline().run([ERRORS], Answers({E_Q: 0.0, E_R: 3.0}))
    assert report.result == "fail"
    assert report.verdicts[0].detail == ("1 failed measurements in a row (limit 0): "
                                         "only 3 requests, needs 20")
    assert len(report.readings) == 1 and report.stopped_early  # limit 0: the first one decides


def test_offline_gates_count_and_are_recorded():
    gates = [{"gate": "accuracy", "result": "fail", "detail": "0.81 < 0.9"}]
    report = Timeline().run([ERRORS], Answers(GOOD), offline=gates)
    assert report.result == "fail"
    assert report.reasons == ("accuracy: 0.81 < 0.9",)
    assert report.as_dict()["offline"] == gates


def test_the_decision_record_holds_every_query_as_run():
    record = Timeline().run([ERRORS, LATENCY], Answers(GOOD)).as_dict()
    assert json.loads(json.dumps(record)) == record
    assert record["result"] == "pass"
    assert {k: record[k] for k in VALUES} == VALUES
    assert record["started"] == "2023-11-14T22:13:20+00:00"
    assert record["finished_at"] - record["started_at"] == 60
    assert record["metrics"] == [
        {"metric": "error-rate", "result": "pass", "detail": "3 measurements, latest passed",
         "measured": 3, "planned": 3},
        {"metric": "p95", "result": "pass", "detail": "2 measurements, latest passed",
         "measured": 2, "planned": 2}]
    assert (record["stopped_early"], record["stop_reason"]) == (False, None)
    assert record["measurements_planned"] == 5
    assert record["measurements"][1] == {
        "metric": "p95", "index": 1, "at": "2023-11-14T22:13:20+00:00", "value": 0.11,
        "baseline": 0.1, "requests": None, "verdict": "pass", "detail": "0.11 within limits",
        "query": L_Q, "baseline_query": L_B, "requests_query": None}
    assert record["measurements"][4]["requests_query"] == E_R
    assert datetime.fromisoformat(record["measurements"][4]["at"]).tzinfo is not None


def test_no_metrics_is_inconclusive():
    report = Timeline().run([], Answers({}))
    assert (report.result, report.readings) == ("inconclusive", ())


# -- stopping early, as Argo Rollouts and Flagger do -----------------------------------
# argoproj/argo-rollouts analysis/analysis.go (assessMetricFailureInconclusiveOrError: a
# metric is Failed once failed > failureLimit, Inconclusive once inconclusive >
# inconclusiveLimit) and utils/analysis/helpers.go (IsTerminating: one such metric ends
# the whole run); fluxcd/flagger pkg/controller/scheduler.go (rollback once FailedChecks
# reach the threshold, at the next interval, not at the end of the analysis).

FLAKY = AnalysisMetric(  # 5 measurements a minute apart, one failure in a row tolerated
    "error-rate", 'errors{revision="{{ revision }}"}[{{ interval }}]', max=0.01,
    requests_query='requests{revision="{{ revision }}"}[{{ interval }}]', min_requests=20,
    interval=60, count=5, failure_limit=1)
F_Q, F_R = 'errors{revision="cancer-predictor-00002"}[60s]', 'requests{revision="cancer-predictor-00002"}[60s]'
SLOW = replace(LATENCY, interval=60, count=5)  # p95 on the same minutes
S_Q, S_B = 'p95{revision="cancer-predictor-00002"}[60s]', 'p95{revision="cancer-predictor-00001"}[60s]'


def test_a_failing_canary_stops_once_its_failures_exceed_the_limit():
    clock, lines = Timeline(), []
    report = clock.run([FLAKY], Answers({F_Q: 0.5, F_R: 100.0}), progress=lines.append)
    assert report.result == "fail"
    assert len(report.readings) == FLAKY.failure_limit + 1 == 2
    assert clock.sleeps == [60]  # one interval, not the schedule's four
    record = report.as_dict()
    assert record["stopped_early"] is True and record["measurements_planned"] == 5
    assert record["stop_reason"] == ("error-rate: 2 failed measurements in a row (limit 1): "
                                     "0.5 > max 0.01")
    assert record["metrics"][0]["measured"] == 2 and record["metrics"][0]["planned"] == 5
    assert lines[-1] == ("stopped early after 2 of 5 measurements: " + record["stop_reason"])


def test_a_tolerated_blip_does_not_stop_it():
    clock = Timeline()
    report = clock.run([FLAKY], Answers({F_Q: [0.0, 0.5, 0.0, 0.0, 0.0], F_R: 100.0}))
    assert report.result == "pass" and len(report.readings) == 5
    assert not report.stopped_early and clock.sleeps == [60] * 4


def test_stopping_early_gives_the_verdict_the_whole_schedule_would():
    answers = {F_Q: [0.0, 0.5, 0.5, 0.0, 0.0], F_R: 100.0}
    early = Timeline().run([FLAKY], Answers(answers))
    assert len(early.readings) == 3 and early.stopped_early
    whole = [a.judge(FLAKY.check(), v, None, 100.0) for v in answers[F_Q]]
    assert a.metric_verdict(FLAKY.check(), whole, 1) == early.verdicts[0]


@pytest.mark.parametrize(("no_data", "result", "taken"), [("fail", "fail", 2),
                                                            ("inconclusive", "inconclusive", 1)])
def test_an_unreachable_prometheus_stops_it_per_no_data(no_data, result, taken):
    down = PrometheusError("Prometheus at http://127.0.0.1:9 unavailable: ConnectionError")
    metric = replace(FLAKY, no_data=no_data)
    clock = Timeline()
    report = clock.run([metric], Answers({F_Q: down, F_R: down}))
    assert (report.result, len(report.readings)) == (result, taken)
    assert report.stopped_early and clock.sleeps == [60] * (taken - 1)
    assert "unavailable" in report.reasons[0]


def test_the_metrics_it_cuts_short_are_inconclusive_and_the_settled_one_leads():
    answers = Answers({F_Q: 0.0, F_R: 100.0, S_Q: [0.11, None], S_B: 0.1})
    report = Timeline().run([FLAKY, SLOW], answers)
    # minute 0: both pass; minute 1: error-rate passes, p95 has no data -> cannot pass
    assert len(report.readings) == 4 and report.result == "inconclusive"
    assert report.verdicts[0] == a.MetricVerdict(
        "error-rate", "inconclusive", "stopped after 2 of 5 measurements (p95 was "
        "inconclusive)", unfinished=True)
    assert report.reasons[0].startswith("p95: no data, so it cannot pass")
    assert report.as_dict()["stop_reason"] == report.reasons[0]


def test_a_failure_beats_a_cut_short_metric():
    report = Timeline().run([FLAKY, SLOW], Answers({F_Q: 0.5, F_R: 100.0, S_Q: 0.11,
                                                    S_B: 0.1}))
    # minute 1 measures error-rate first (configured order): p95 is not measured again
    assert report.result == "fail" and len(report.readings) == 3
    assert [v.result for v in report.verdicts] == ["fail", "inconclusive"]
    assert report.reasons == (report.as_dict()["stop_reason"],)


def test_a_stop_at_the_last_measurement_is_no_early_stop():
    once = replace(FLAKY, count=1, failure_limit=0)
    report = Timeline().run([once], Answers({F_Q: 0.5, F_R: 100.0}))
    assert report.result == "fail" and not report.stopped_early
