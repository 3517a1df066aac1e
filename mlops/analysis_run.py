"""One canary analysis: take every metric's measurements on one timeline, then decide.

The caller injects the I/O (`query` runs PromQL, `sleep` and `clock` pace the
schedule, `wall` stamps the record), so the loop needs no SDK and is tested
without Prometheus. The verdicts themselves are `mlops.core.analysis`'s: a query
that cannot be answered is a measurement with no data, never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mlops.canaryconfig import AnalysisMetric
from mlops.core import analysis, promql
from mlops.errors import ConfigError, MlopsError
from mlops.records import dataclass, field

NO_DATA = analysis.NO_DATA
Query = Callable[[str], float | None]


@dataclass(frozen=True)
class Queries:
    """The PromQL of one metric exactly as it is run (rendered once, up front)."""

    query: str
    baseline: str | None = None
    requests: str | None = None


@dataclass(frozen=True)
class Reading:
    """One measurement with where and when it came from."""

    index: int  # 1-based, per metric
    at: str  # UTC ISO time the measurement was taken
    queries: Queries
    measurement: analysis.Measurement

    def as_dict(self) -> dict[str, object]:
        return {**self.measurement.as_dict(), "index": self.index, "at": self.at,
                "query": self.queries.query, "baseline_query": self.queries.baseline,
                "requests_query": self.queries.requests}


@dataclass(frozen=True)
class AnalysisReport:
    result: str  # pass | fail | inconclusive
    reasons: tuple[str, ...]
    verdicts: tuple[analysis.MetricVerdict, ...]
    readings: tuple[Reading, ...]
    values: Mapping[str, str] = field(default_factory=dict)
    offline: tuple[Mapping[str, object], ...] = ()
    started_at: float = 0.0  # epoch seconds
    finished_at: float = 0.0
    planned: tuple[int, ...] = ()  # measurements each metric was to take, as `verdicts`
    stop_reason: str | None = None  # why it stopped before its schedule ended

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason is not None

    def as_dict(self) -> dict[str, Any]:
        """The decision record: JSON-able, with every query as it was run."""
        return {
            "result": self.result, "reasons": list(self.reasons),
            **{key: self.values.get(key) for key in
               ("service", "namespace", "revision", "baseline_revision")},
            "started": iso(self.started_at), "finished": iso(self.finished_at),
            "started_at": self.started_at, "finished_at": self.finished_at,
            "stopped_early": self.stopped_early, "stop_reason": self.stop_reason,
            "measurements_planned": sum(self.planned),
            "metrics": [self._metric(i, v) for i, v in enumerate(self.verdicts)],
            "offline": [dict(g) for g in self.offline],
            "measurements": [r.as_dict() for r in self.readings],
        }

    def _metric(self, i: int, v: analysis.MetricVerdict) -> dict[str, Any]:
        taken = sum(1 for r in self.readings if r.measurement.metric == v.metric)
        planned = self.planned[i] if i < len(self.planned) else taken
        return {"metric": v.metric, "result": v.result, "detail": v.detail,
                "measured": taken, "planned": planned}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def schedule(metrics: Sequence[AnalysisMetric]) -> list[tuple[float, int, int]]:
    """(seconds from the start, metric position, 1-based index), in time order.

    Measurement k of a metric is at (k - 1) * interval: the first is immediate.
    Ties keep the configured order of the metrics.
    """
    slots = [((n - 1) * m.interval, i, n)
             for i, m in enumerate(metrics) for n in range(1, m.count + 1)]
    return sorted(slots)


def render_queries(metric: AnalysisMetric, values: Mapping[str, str]) -> Queries:
    """Fill the templates; `{{ interval }}` is the metric's own window.

    A missing or unsafe value is a ConfigError now, before any waiting.
    """
    filled = {**values, "interval": metric.window}
    baseline = None
    if metric.max_ratio_to_baseline is not None:
        if not values.get("baseline_revision"):
            raise ConfigError(f"analysis metric {metric.name!r} compares with the baseline, "
                              "but there is no baseline revision")
        baseline = promql.render(metric.query, {**filled, "revision": values["baseline_revision"]})
    requests = (promql.render(metric.requests_query, filled)
                if metric.requests_query is not None else None)
    return Queries(promql.render(metric.query, filled), baseline, requests)


def measure(metric: AnalysisMetric, queries: Queries, query: Query) -> analysis.Measurement:
    """Run the queries and judge; an unanswered query is no data, with the error as detail."""
    seen: dict[str, float | None] = {"value": None, "baseline": None, "requests": None}
    try:
        seen["value"] = query(queries.query)
        if queries.baseline is not None:
            seen["baseline"] = query(queries.baseline)
        if queries.requests is not None:
            seen["requests"] = query(queries.requests)
    except MlopsError as exc:
        return analysis.Measurement(metric.name, seen["value"], seen["baseline"],
                                    seen["requests"], NO_DATA, f"no answer: {exc}")
    return analysis.judge(metric.check(), seen["value"], seen["baseline"], seen["requests"])


def progress_line(metric: AnalysisMetric, reading: Reading) -> str:
    m = reading.measurement
    value = "no data" if m.value is None else f"{m.value:.6g}"
    why = "" if m.verdict == analysis.PASS else f": {m.detail}"
    return f"{metric.name} {reading.index}/{metric.count}: {value} ({m.verdict}{why})"


def run_analysis(metrics: Sequence[AnalysisMetric], query: Query, values: Mapping[str, str],
                 *, offline: Sequence[Mapping[str, object]] = (),
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 progress: Callable[[str], None] | None = None) -> AnalysisReport:
    """Measure every metric on its schedule, then judge each and decide overall.

    It stops at the first metric that is settled (`analysis.settled`): a
    failure beyond `failure_limit`, or no data that rules out a pass. Waiting
    out the rest of the schedule could not turn the result into a pass.
    """
    queries = [render_queries(m, values) for m in metrics]
    started_at, start = wall(), clock()
    taken: list[tuple[int, Reading]] = []  # (metric position, reading), in time order
    stop: tuple[int, analysis.MetricVerdict] | None = None
    for offset, i, n in schedule(metrics):
        wait = start + offset - clock()
        if wait > 0:
            sleep(wait)
        reading = Reading(n, iso(wall()), queries[i], measure(metrics[i], queries[i], query))
        taken.append((i, reading))
        if progress is not None:
            progress(progress_line(metrics[i], reading))
        stop = _settled(metrics[i], i, taken)
        if stop is not None:
            break
    report = _report(metrics, taken, values, offline, started_at, wall(), stop)
    if report.stopped_early and progress is not None:
        progress(f"stopped early after {len(taken)} of {sum(report.planned)} "
                 f"measurements: {report.stop_reason}")
    return report


def _settled(metric: AnalysisMetric, i: int,
             taken: Sequence[tuple[int, Reading]]) -> tuple[int, analysis.MetricVerdict] | None:
    mine = [r.measurement for j, r in taken if j == i]
    verdict = analysis.settled(metric.check(), mine, metric.failure_limit)
    return None if verdict is None else (i, verdict)


def _report(metrics: Sequence[AnalysisMetric], taken: Sequence[tuple[int, Reading]],
            values: Mapping[str, str], offline: Sequence[Mapping[str, object]],
            started_at: float, finished_at: float,
            stop: tuple[int, analysis.MetricVerdict] | None = None) -> AnalysisReport:
    planned = tuple(m.count for m in metrics)
    verdicts = tuple(_verdict(m, i, [r.measurement for j, r in taken if j == i], stop)
                     for i, m in enumerate(metrics))
    result, reasons = analysis.decide(verdicts, offline)
    # A stop with nothing left to measure is a schedule that simply ended.
    early = stop is not None and len(taken) < sum(planned)
    reason = f"{stop[1].metric}: {stop[1].detail}" if early and stop else None
    return AnalysisReport(result, tuple(reasons), verdicts, tuple(r for _, r in taken),
                          dict(values), tuple(offline), started_at, finished_at, planned,
                          reason)


def _verdict(metric: AnalysisMetric, i: int, mine: Sequence[analysis.Measurement],
             stop: tuple[int, analysis.MetricVerdict] | None) -> analysis.MetricVerdict:
    if stop is not None and stop[0] == i:
        return stop[1]
    if stop is not None and len(mine) < metric.count:
        return analysis.cut_short(metric.check(), len(mine), metric.count,
                                  f"{stop[1].metric} was {stop[1].result}")
    return analysis.metric_verdict(metric.check(), mine, metric.failure_limit)
