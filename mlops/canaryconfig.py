"""The `canary:` section of an environment in mlops.yaml: steps and live analysis.

```yaml
canary:
  steps: [10, 50]            # canaryTrafficPercent at each step; 100% is the promote after
  analysis:
    metrics:
      - name: error-rate
        query: sum(rate(errors{revision="{{ revision }}"}[{{ interval }}]))
        max: 0.01
        requests_query: sum(increase(requests{revision="{{ revision }}"}[{{ interval }}]))
        min_requests: 20
        no_data: fail          # or inconclusive; never pass
        interval: 30s
        count: 3
        failure_limit: 1
```
"""

from __future__ import annotations

import math
from typing import Any

from mlops import schema
from mlops.adapters.yamlio import Located
from mlops.core import promql
from mlops.core.analysis import FAIL, INCONCLUSIVE, MetricCheck
from mlops.errors import ConfigError
from mlops.records import dataclass
from mlops.schema import Key

DEFAULT_INTERVAL = 60.0


def _duration(value: Any, where: str) -> float:
    seconds = schema.duration(value, where)
    if seconds < 1:
        raise ConfigError(f"{where} must be at least 1s")
    return seconds


def _non_negative(value: Any, where: str) -> float:
    number = schema.finite_number(value, where)
    if number < 0:
        raise ConfigError(f"{where} must not be negative")
    return number


def _positive(value: Any, where: str) -> float:
    number = schema.finite_number(value, where)
    if number <= 0:
        raise ConfigError(f"{where} must be greater than 0")
    return number


def _count_or_zero(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where} must be a whole number of at least 0")
    return int(value)


def _no_data(value: Any, where: str) -> str:
    if value not in (FAIL, INCONCLUSIVE):
        raise ConfigError(f"{where} must be 'fail' or 'inconclusive' (no data never passes)")
    return str(value)


def _template(value: Any, where: str) -> str:
    text = schema.string(value, where)
    promql.check_template(text, where)
    return text


def steps(value: Any, where: str) -> tuple[int, ...]:
    """canaryTrafficPercent steps: whole numbers, strictly increasing, within 1-99."""
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list of percentages, e.g. [10, 50]")
    for step in value:
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 99:
            raise ConfigError(f"{where}: {step!r} is not a whole percentage within 1-99 "
                              "(100% is the final promote)")
    for before, after in zip(value, value[1:], strict=False):
        if after <= before:
            raise ConfigError(f"{where} must be strictly increasing ({before} then {after})")
    return tuple(value)


ANALYSIS_METRIC_KEYS: dict[str, Key] = {
    "name": Key(schema.string, "Name of the check, shown in the decision record.", required=True),
    "query": Key(
        _template,
        "PromQL template giving one number for the canary. Variables: {{ service }}, "
        "{{ namespace }}, {{ revision }}, {{ baseline_revision }}, {{ interval }}. "
        "For max_ratio_to_baseline it is also run with revision set to the baseline revision.",
        required=True,
    ),
    "min": Key(schema.finite_number, "The canary's value must be at least this."),
    "max": Key(schema.finite_number, "The canary's value must be at most this."),
    "max_ratio_to_baseline": Key(
        _positive, "The canary's value must be at most this times the baseline revision's."
    ),
    "requests_query": Key(
        _template, "PromQL template counting the canary's requests in the interval."
    ),
    "min_requests": Key(
        _non_negative, "Fewer requests than this (by requests_query) is no data.", default=0.0
    ),
    "no_data": Key(
        _no_data, "What no data or too little traffic means: fail or inconclusive.", default=FAIL
    ),
    "interval": Key(
        _duration, "Time between measurements; also {{ interval }} in the query.",
        default=DEFAULT_INTERVAL,
    ),
    "count": Key(schema.positive_int, "How many measurements to take.", default=1),
    "failure_limit": Key(
        _count_or_zero, "Failed measurements in a row that are tolerated (damps flapping).",
        default=0,
    ),
}

CANARY_KEYS: dict[str, Key] = {
    "steps": Key(
        steps, "canaryTrafficPercent of each step, increasing within 1-99, e.g. [10, 50].",
        required=True,
    ),
    "analysis": Key(lambda v, w: v, "Live analysis (see canary.analysis.*).", default=None),
}

ANALYSIS_KEYS: dict[str, Key] = {
    "metrics": Key(lambda v, w: v, "Checks on Prometheus metrics (see the metric keys).",
                   required=True),
}


@dataclass(frozen=True)
class AnalysisMetric:
    name: str
    query: str
    min: float | None = None
    max: float | None = None
    max_ratio_to_baseline: float | None = None
    requests_query: str | None = None
    min_requests: float = 0.0
    no_data: str = FAIL
    interval: float = DEFAULT_INTERVAL
    count: int = 1
    failure_limit: int = 0

    def check(self) -> MetricCheck:
        return MetricCheck(self.name, self.query, self.min, self.max,
                           self.max_ratio_to_baseline, self.min_requests,
                           self.requests_query, self.no_data)

    @property
    def window(self) -> str:
        """`{{ interval }}` as a PromQL duration (whole seconds)."""
        return f"{math.ceil(self.interval)}s"


@dataclass(frozen=True)
class Canary:
    steps: tuple[int, ...]
    metrics: tuple[AnalysisMetric, ...] = ()


def read_canary(doc: Located, node: Any, env: str, where: str) -> Canary | None:
    """`where`: the line of the `canary:` key (a scalar there has no line of its own)."""
    if node is None:
        return None
    values = schema.read_section(doc, node, CANARY_KEYS, f"canary of {env}", where)
    analysis = values["analysis"]
    if analysis is None:
        raise ConfigError(f"{doc.where(node)}: canary of {env} needs an analysis: with metrics "
                          "(a canary is never promoted without evidence)")
    section = schema.read_section(doc, analysis, ANALYSIS_KEYS, f"canary analysis of {env}",
                                  doc.where(node, "analysis"))
    return Canary(values["steps"], _metrics(doc, section["metrics"], env,
                                            doc.where(analysis, "metrics")))


def _metrics(doc: Located, node: Any, env: str, at: str) -> tuple[AnalysisMetric, ...]:
    if not isinstance(node, list) or not node:
        raise ConfigError(f"{at}: canary analysis metrics of {env} must be a non-empty list")
    metrics, seen = [], set()
    for i, item in enumerate(node):
        values = schema.read_section(doc, item, ANALYSIS_METRIC_KEYS,
                                     f"an analysis metric of {env}", doc.where(node, i))
        metric = AnalysisMetric(**values)
        _check_limits(doc, item, metric)
        if metric.name in seen:
            raise ConfigError(f"{doc.where(item)}: analysis metric {metric.name!r} is listed twice")
        seen.add(metric.name)
        metrics.append(metric)
    return tuple(metrics)


def _check_limits(doc: Located, item: Any, m: AnalysisMetric) -> None:
    where = doc.where(item)
    if m.min is None and m.max is None and m.max_ratio_to_baseline is None:
        raise ConfigError(f"{where}: analysis metric {m.name!r} needs min, max or "
                          "max_ratio_to_baseline")
    if m.min is not None and m.max is not None and m.min > m.max:
        raise ConfigError(f"{where}: analysis metric {m.name!r} has min {m.min:g} > max "
                          f"{m.max:g}; no value could pass")
    if m.min_requests > 0 and m.requests_query is None:
        raise ConfigError(f"{where}: analysis metric {m.name!r} sets min_requests without "
                          "a requests_query to count them")
