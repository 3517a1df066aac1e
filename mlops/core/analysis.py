"""Canary analysis verdicts: pure, and never a pass without evidence.

Each metric is measured `count` times. A measurement fails when the value is
outside its range (or its limit relative to the baseline revision), and has
no verdict when there is no data or too little traffic; the metric's
`no_data` policy turns that into a failure or an inconclusive result, never
a pass. A metric fails when more than `failure_limit` measurements fail in a
row. The analysis passes only when every metric and every offline gate passes.

A metric is *settled* as soon as no further measurement could make it pass:
its failures in a row exceed `failure_limit` (fail), or it has no data under
`no_data: inconclusive` (inconclusive). The analysis stops there, as Argo
Rollouts ends an AnalysisRun once a metric is Failed or Inconclusive
(argoproj/argo-rollouts utils/analysis/helpers.go `IsTerminating`,
analysis/analysis.go `assessMetricFailureInconclusiveOrError`) and Flagger
rolls back once its failed checks reach the threshold (fluxcd/flagger
pkg/controller/scheduler.go). Stopping early never changes the verdict of the
settled metric; the metrics it cuts short are inconclusive, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mlops.records import dataclass

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
NO_DATA = "no-data"  # a measurement without a verdict


@dataclass(frozen=True)
class MetricCheck:
    name: str
    query: str
    min: float | None = None
    max: float | None = None
    max_ratio_to_baseline: float | None = None
    min_requests: float = 0
    requests_query: str | None = None
    no_data: str = FAIL  # fail | inconclusive


@dataclass(frozen=True)
class Measurement:
    metric: str
    value: float | None
    baseline: float | None
    requests: float | None
    verdict: str  # pass | fail | no-data
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "value": self.value, "baseline": self.baseline,
                "requests": self.requests, "verdict": self.verdict, "detail": self.detail}


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def judge(check: MetricCheck, value, baseline=None, requests=None) -> Measurement:
    def m(verdict: str, detail: str) -> Measurement:
        return Measurement(check.name, value, baseline, requests, verdict, detail)

    if check.requests_query is not None and (
        _missing(requests) or requests < check.min_requests  # type: ignore[operator]
    ):
        return m(NO_DATA, f"only {requests or 0:g} requests, needs {check.min_requests:g}")
    if _missing(value):
        return m(NO_DATA, "the query returned no data")
    problems = _range_problems(check, value)
    if check.max_ratio_to_baseline is not None:
        problems += _baseline_problems(check, value, baseline)
    return m(FAIL, "; ".join(problems)) if problems else m(PASS, f"{value:.6g} within limits")


def _range_problems(check: MetricCheck, value: float) -> list[str]:
    problems = []
    if check.min is not None and value < check.min:
        problems.append(f"{value:.6g} < min {check.min:g}")
    if check.max is not None and value > check.max:
        problems.append(f"{value:.6g} > max {check.max:g}")
    return problems


def _baseline_problems(check: MetricCheck, value: float, baseline) -> list[str]:
    if _missing(baseline):
        return ["the baseline revision has no data to compare with"]
    limit = baseline * check.max_ratio_to_baseline
    if value > limit:
        return [f"{value:.6g} > {check.max_ratio_to_baseline:g} x baseline {baseline:.6g}"]
    return []


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    result: str
    detail: str
    unfinished: bool = False  # cut short when another metric settled the analysis


def _counts_as_failure(check: MetricCheck, m: Measurement) -> bool:
    return m.verdict == FAIL or (m.verdict == NO_DATA and check.no_data == FAIL)


def _worst_streak(check: MetricCheck, measurements: Sequence[Measurement]) -> int:
    streak = worst = 0
    for meas in measurements:
        streak = streak + 1 if _counts_as_failure(check, meas) else 0
        worst = max(worst, streak)
    return worst


def _too_many_failures(check: MetricCheck, measurements: Sequence[Measurement],
                       failure_limit: int) -> MetricVerdict | None:
    worst = _worst_streak(check, measurements)
    if worst <= failure_limit:
        return None
    last = next(m for m in reversed(measurements) if m.verdict != PASS)
    return MetricVerdict(check.name, FAIL, f"{worst} failed measurements in a row "
                         f"(limit {failure_limit}): {last.detail}")


def settled(check: MetricCheck, measurements: Sequence[Measurement],
            failure_limit: int) -> MetricVerdict | None:
    """The metric's verdict once no further measurement could make it a pass, else None.

    A streak of failures only grows, and a gap under `no_data: inconclusive`
    never goes away, so either verdict is final for the metric (as
    `metric_verdict` would give it at the end). A failure wins over a gap.
    """
    failed = _too_many_failures(check, measurements, failure_limit)
    if failed is not None:
        return failed
    gaps = [m for m in measurements if m.verdict == NO_DATA]
    if gaps and check.no_data == INCONCLUSIVE:
        return MetricVerdict(check.name, INCONCLUSIVE, f"no data, so it cannot pass: "
                             f"{gaps[0].detail}")
    return None


def metric_verdict(check: MetricCheck, measurements: Sequence[Measurement],
                   failure_limit: int) -> MetricVerdict:
    """Fail on too many failures in a row; never pass without a passing, latest reading."""
    failed = _too_many_failures(check, measurements, failure_limit)
    if failed is not None:
        return failed
    if not any(m.verdict == PASS for m in measurements):
        why = measurements[-1].detail if measurements else "no measurements"
        return MetricVerdict(check.name, _no_data_result(check), f"no evidence: {why}")
    gaps = [m for m in measurements if m.verdict == NO_DATA]
    if gaps and check.no_data == INCONCLUSIVE:
        return MetricVerdict(check.name, INCONCLUSIVE, gaps[0].detail)
    if measurements[-1].verdict != PASS:
        return MetricVerdict(check.name, INCONCLUSIVE,
                             f"latest measurement did not pass: {measurements[-1].detail}")
    return MetricVerdict(check.name, PASS, f"{len(measurements)} measurements, latest passed")


def cut_short(check: MetricCheck, taken: int, planned: int, because: str) -> MetricVerdict:
    """A metric the analysis stopped before its schedule ended: unproven, so inconclusive."""
    return MetricVerdict(check.name, INCONCLUSIVE, f"stopped after {taken} of {planned} "
                         f"measurements ({because})", unfinished=True)


def _no_data_result(check: MetricCheck) -> str:
    return FAIL if check.no_data == FAIL else INCONCLUSIVE


def decide(verdicts: Sequence[MetricVerdict], offline: Sequence[Mapping[str, object]] = ()):
    """(result, reasons): fail beats inconclusive beats pass."""
    failed = [f"{v.metric}: {v.detail}" for v in verdicts if v.result == FAIL]
    failed += [f"{g['gate']}: {g['detail']}" for g in offline if g.get("result") != PASS]
    if failed:
        return FAIL, failed
    # the metric that settled an analysis stopped early explains it best: it comes first
    unsure = [f"{v.metric}: {v.detail}" for v in sorted(verdicts, key=lambda v: v.unfinished)
              if v.result == INCONCLUSIVE]
    if unsure:
        return INCONCLUSIVE, unsure
    if not verdicts:
        return INCONCLUSIVE, ["no metrics were analysed"]
    return PASS, [f"{v.metric}: {v.detail}" for v in verdicts]
