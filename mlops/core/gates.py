"""Gate evaluation: pure, and closed by default.

A missing metric, a NaN or an infinity, a missing champion value or an undefined relative
change is a failure with its reason, never a pass. The regression rule
follows MLflow's MetricThreshold: the candidate must beat the champion (the
release now in the target environment) by at least min_absolute_change /
min_relative_change, in the direction greater_is_better says. max_relative_drop is
the guardrail beside it: the candidate may be worse than the champion by at most that
fraction of the champion's value, and need not improve on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mlops.envconfig import MetricGate
from mlops.records import dataclass


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"gate": self.name, "result": "pass" if self.passed else "fail",
                "detail": self.detail}


def evaluate_metric_gates(
    gates: Sequence[MetricGate],
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    champion_id: str | None = None,
) -> list[GateResult]:
    results: list[GateResult] = []
    for gate in gates:
        results.extend(_one_gate(gate, candidate, champion, champion_id))
    return results


def _one_gate(gate, candidate, champion, champion_id) -> list[GateResult]:
    value = candidate.get(gate.metric)
    checks = []
    if gate.threshold is not None:
        checks.append(_threshold(gate, value))
    if gate.min_absolute_change is not None or gate.min_relative_change is not None:
        checks.extend(_regression(gate, value, champion, champion_id))
    if gate.max_relative_drop is not None:
        checks.append(_max_drop(gate, value, champion, champion_id))
    return checks


def _bad_value(metric: str, value: float | None) -> str | None:
    if value is None:
        return f"{metric} is missing from the evaluation metrics"
    if isinstance(value, float) and math.isnan(value):
        return f"{metric} is NaN"
    if isinstance(value, float) and math.isinf(value):
        return f"{metric} is {value}, not a measurement"  # inf would pass every bound
    return None


def _threshold(gate: MetricGate, value: float | None) -> GateResult:
    name = f"{gate.metric}-threshold"
    problem = _bad_value(gate.metric, value)
    bound = gate.threshold
    if problem or value is None or bound is None:
        return GateResult(name, False, problem or "no threshold")
    op, ok = (">=", value >= bound) if gate.greater_is_better else ("<=", value <= bound)
    verdict = "" if ok else " is false"
    return GateResult(name, ok, f"{gate.metric} {value:.6g} {op} {bound:.6g}{verdict}")


def _champion_value(name, gate, value, champion, champion_id) -> float | GateResult:
    """The champion's value to compare with, or the result that settles the gate first."""
    problem = _bad_value(gate.metric, value)
    if problem:
        return GateResult(name, False, problem)
    if champion is None:
        return GateResult(name, True, "no champion yet in the target environment")
    base = champion.get(gate.metric)
    if base is None or not math.isfinite(base):
        who = f"champion {champion_id}" if champion_id else "the champion"
        return GateResult(name, False, f"{who} has no usable {gate.metric}")
    return base


def _regression(gate, value, champion, champion_id) -> list[GateResult]:
    name = f"{gate.metric}-vs-champion"
    base = _champion_value(name, gate, value, champion, champion_id)
    if isinstance(base, GateResult):
        return [base]
    gain = value - base if gate.greater_is_better else base - value
    results = []
    if gate.min_absolute_change is not None:
        ok = gain >= gate.min_absolute_change
        results.append(GateResult(
            name, ok, f"{gate.metric} {value:.6g} vs champion {base:.6g}: change {gain:+.6g}, "
            f"needs >= {gate.min_absolute_change:+.6g}"))
    if gate.min_relative_change is not None:
        if base == 0:
            results.append(GateResult(name, False, f"champion {gate.metric} is 0: relative "
                                      "change is undefined"))
        else:
            rel = gain / abs(base)
            ok = rel >= gate.min_relative_change
            results.append(GateResult(
                name, ok, f"{gate.metric} relative change {rel:+.4%}, needs >= "
                f"{gate.min_relative_change:+.4%}"))
    return results


def _max_drop(gate, value, champion, champion_id) -> GateResult:
    """At most max_relative_drop worse than the champion; no improvement needed."""
    name = f"{gate.metric}-max-drop"
    base = _champion_value(name, gate, value, champion, champion_id)
    if isinstance(base, GateResult):
        return base
    if base == 0:
        return GateResult(name, False, f"champion {gate.metric} is 0: relative drop is undefined")
    loss = base - value if gate.greater_is_better else value - base
    drop = loss / abs(base)
    ok = drop <= gate.max_relative_drop
    return GateResult(
        name, ok, f"{gate.metric} {value:.6g} vs champion {base:.6g}: drop {drop:+.4%}, "
        f"allows at most {gate.max_relative_drop:.4%}")


def soak_gate(required: float, entered_at: float | None, now: float, source: str) -> GateResult:
    """The release must have been in `source` for `required` seconds (from git history)."""
    if required <= 0:
        return GateResult("soak", True, "no soak time required")
    if entered_at is None:
        return GateResult("soak", False,
                          f"no dated promotion of this release into {source} in history")
    elapsed = now - entered_at
    ok = elapsed >= required
    return GateResult("soak", ok, f"in {source} for {_human(elapsed)}, needs {_human(required)}")


def _human(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
