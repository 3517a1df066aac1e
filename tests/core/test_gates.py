"""Gate evaluation, pure: max_relative_drop against the champion, closed by default."""

from __future__ import annotations

import math

import pytest

from mlops.config import load_config
from mlops.core.gates import evaluate_metric_gates
from mlops.envconfig import MetricGate

ACCURACY = MetricGate("accuracy", max_relative_drop=0.02)
LATENCY = MetricGate("latency_ms", max_relative_drop=0.1, greater_is_better=False)


def one(gate: MetricGate, value, champion, champion_id: str | None = "r-champion"):
    candidate = {} if value is None else {gate.metric: value}
    [result] = evaluate_metric_gates([gate], candidate, champion, champion_id)
    return result


@pytest.mark.parametrize(("gate", "value", "base", "passed", "detail"), [
    (ACCURACY, 0.94, 0.95, True,
     "accuracy 0.94 vs champion 0.95: drop +1.0526%, allows at most 2.0000%"),
    (ACCURACY, 0.92, 0.95, False,
     "accuracy 0.92 vs champion 0.95: drop +3.1579%, allows at most 2.0000%"),
    (ACCURACY, 0.99, 0.95, True,
     "accuracy 0.99 vs champion 0.95: drop -4.2105%, allows at most 2.0000%"),
    (LATENCY, 120, 100, False,
     "latency_ms 120 vs champion 100: drop +20.0000%, allows at most 10.0000%"),
    (LATENCY, 105, 100, True,
     "latency_ms 105 vs champion 100: drop +5.0000%, allows at most 10.0000%"),
    (LATENCY, 80, 100, True,
     "latency_ms 80 vs champion 100: drop -20.0000%, allows at most 10.0000%"),
    (LATENCY, 110, 100, True,  # exactly the allowed drop
     "latency_ms 110 vs champion 100: drop +10.0000%, allows at most 10.0000%"),
    (MetricGate("loglik", max_relative_drop=0.1), -105, -100, True,  # negative champion
     "loglik -105 vs champion -100: drop +5.0000%, allows at most 10.0000%"),
    (MetricGate("loglik", max_relative_drop=0.1), -120, -100, False,
     "loglik -120 vs champion -100: drop +20.0000%, allows at most 10.0000%"),
    (MetricGate("accuracy", max_relative_drop=0.0), 0.95, 0.95, True,
     "accuracy 0.95 vs champion 0.95: drop +0.0000%, allows at most 0.0000%"),
    (MetricGate("accuracy", max_relative_drop=0.0), 0.9499, 0.95, False,
     "accuracy 0.9499 vs champion 0.95: drop +0.0105%, allows at most 0.0000%"),
], ids=["small-drop", "big-drop", "better", "latency-up-too-much", "latency-up-a-little",
        "latency-down", "at-the-bound", "negative-champion-within",
        "negative-champion-beyond", "zero-allows-equal", "zero-refuses-worse"])
def test_the_candidate_may_be_worse_by_at_most_the_fraction(gate, value, base, passed, detail):
    result = one(gate, value, {gate.metric: base})
    assert (result.name, result.passed, result.detail) == (
        f"{gate.metric}-max-drop", passed, detail)


@pytest.mark.parametrize(("value", "champion", "detail"), [
    (None, {"accuracy": 0.95}, "accuracy is missing from the evaluation metrics"),
    (math.nan, {"accuracy": 0.95}, "accuracy is NaN"),
    (math.inf, {"accuracy": 0.95}, "accuracy is inf, not a measurement"),
    (-math.inf, {"accuracy": 0.95}, "accuracy is -inf, not a measurement"),
    (None, None, "accuracy is missing from the evaluation metrics"),
    (0.95, {"f1": 0.9}, "champion r-champion has no usable accuracy"),
    (0.95, {"accuracy": math.nan}, "champion r-champion has no usable accuracy"),
    (0.95, {"accuracy": math.inf}, "champion r-champion has no usable accuracy"),
    (0.95, {"accuracy": 0.0}, "champion accuracy is 0: relative drop is undefined"),
    (0.0, {"accuracy": 0.0}, "champion accuracy is 0: relative drop is undefined"),
], ids=["missing", "nan", "inf", "minus-inf", "missing-without-champion",
        "champion-lacks-it", "champion-nan", "champion-inf", "champion-zero", "both-zero"])
def test_it_fails_closed(value, champion, detail):
    result = one(ACCURACY, value, champion)
    assert (result.name, result.passed, result.detail) == ("accuracy-max-drop", False, detail)


def test_an_unnamed_champion_without_the_metric_fails_too():
    result = one(ACCURACY, 0.95, {}, champion_id=None)
    assert not result.passed and result.detail == "the champion has no usable accuracy"


def test_no_champion_yet_passes_as_the_regression_rule_does():
    drop = one(ACCURACY, 0.5, None)
    [regression] = evaluate_metric_gates(
        [MetricGate("accuracy", min_relative_change=0.0)], {"accuracy": 0.5}, None)
    assert drop.passed and regression.passed
    assert drop.detail == regression.detail == "no champion yet in the target environment"


def test_it_is_its_own_result_beside_the_other_rules():
    gate = MetricGate("accuracy", threshold=0.9, min_absolute_change=-0.05,
                      max_relative_drop=0.01)
    results = evaluate_metric_gates([gate], {"accuracy": 0.93}, {"accuracy": 0.95}, "r-1")
    assert [(r.name, r.passed) for r in results] == [
        ("accuracy-threshold", True), ("accuracy-vs-champion", True),
        ("accuracy-max-drop", False)]


def test_mlops_yaml_declares_it(tmp_path):
    (tmp_path / "mlops.yaml").write_text(
        "registry: r:1/n\nenvironments:\n  - name: prod\n    gates:\n"
        "      - metric: latency_ms\n        greater_is_better: false\n"
        "        max_relative_drop: 0.1\n")
    [env] = load_config(tmp_path, environ={}).environments
    assert env.gates == (LATENCY,)


# min_relative_change against the champion, as MLflow's MetricThreshold: the gain is
# (candidate - champion) when greater is better, (champion - candidate) otherwise, over
# |champion|; it must be at least the bound.
RELATIVE = MetricGate("accuracy", min_relative_change=0.01)
FASTER = MetricGate("latency_ms", min_relative_change=0.05, greater_is_better=False)


@pytest.mark.parametrize(("gate", "value", "base", "passed", "detail"), [
    (RELATIVE, 0.99, 0.95, True, "accuracy relative change +4.2105%, needs >= +1.0000%"),
    (RELATIVE, 0.955, 0.95, False, "accuracy relative change +0.5263%, needs >= +1.0000%"),
    (RELATIVE, 0.9, 0.95, False, "accuracy relative change -5.2632%, needs >= +1.0000%"),
    (MetricGate("accuracy", min_relative_change=0.1), 110, 100, True,  # exactly the bound
     "accuracy relative change +10.0000%, needs >= +10.0000%"),
    (MetricGate("accuracy", min_relative_change=-0.02), 0.94, 0.95, True,  # a tolerance
     "accuracy relative change -1.0526%, needs >= -2.0000%"),
    (MetricGate("loglik", min_relative_change=0.05), -90, -100, True,  # over |champion|
     "loglik relative change +10.0000%, needs >= +5.0000%"),
    (MetricGate("loglik", min_relative_change=0.05), -110, -100, False,
     "loglik relative change -10.0000%, needs >= +5.0000%"),
    (FASTER, 90, 100, True, "latency_ms relative change +10.0000%, needs >= +5.0000%"),
    (FASTER, 98, 100, False, "latency_ms relative change +2.0000%, needs >= +5.0000%"),
    (FASTER, 110, 100, False, "latency_ms relative change -10.0000%, needs >= +5.0000%"),
    (FASTER, 95, 100, True, "latency_ms relative change +5.0000%, needs >= +5.0000%"),
], ids=["better-enough", "better-too-little", "worse", "at-the-bound", "negative-tolerance",
        "negative-champion-better", "negative-champion-worse", "lower-is-better-faster",
        "lower-is-better-too-little", "lower-is-better-slower", "lower-is-better-at-the-bound"])
def test_min_relative_change_against_the_champion(gate, value, base, passed, detail):
    result = one(gate, value, {gate.metric: base})
    assert (result.name, result.passed, result.detail) == (
        f"{gate.metric}-vs-champion", passed, detail)


@pytest.mark.parametrize("gate", [
    RELATIVE, FASTER, MetricGate("accuracy", min_relative_change=-1.0)],
    ids=["greater-is-better", "lower-is-better", "any-change-allowed"])
@pytest.mark.parametrize("value", [0.5, 0.0, -0.5])
def test_a_champion_value_of_zero_fails_a_relative_rule(gate, value):
    result = one(gate, value, {gate.metric: 0.0})
    assert (result.name, result.passed, result.detail) == (
        f"{gate.metric}-vs-champion", False,
        f"champion {gate.metric} is 0: relative change is undefined")


def test_a_champion_value_of_zero_is_fine_for_an_absolute_rule():
    gate = MetricGate("accuracy", min_absolute_change=0.1, min_relative_change=0.1)
    absolute, relative = evaluate_metric_gates([gate], {"accuracy": 0.5}, {"accuracy": 0.0})
    assert (absolute.passed, absolute.detail) == (
        True, "accuracy 0.5 vs champion 0: change +0.5, needs >= +0.1")
    assert (relative.passed, relative.detail) == (
        False, "champion accuracy is 0: relative change is undefined")


@pytest.mark.parametrize(("value", "passed", "detail"), [
    (150, True, "latency_ms 150 <= 200"),
    (200, True, "latency_ms 200 <= 200"),
    (200.5, False, "latency_ms 200.5 <= 200 is false"),
    (-math.inf, False, "latency_ms is -inf, not a measurement"),  # would pass every <= bound
], ids=["below", "at-the-bound", "above", "minus-inf"])
def test_a_lower_is_better_threshold_is_an_upper_bound(value, passed, detail):
    gate = MetricGate("latency_ms", threshold=200, greater_is_better=False)
    result = one(gate, value, None)
    assert (result.name, result.passed, result.detail) == ("latency_ms-threshold", passed, detail)


def test_mlops_yaml_declares_a_relative_rule_for_lower_is_better(tmp_path):
    (tmp_path / "mlops.yaml").write_text(
        "registry: r:1/n\nenvironments:\n  - name: prod\n    gates:\n"
        "      - metric: latency_ms\n        greater_is_better: false\n"
        "        min_relative_change: 0.05\n")
    [env] = load_config(tmp_path, environ={}).environments
    assert env.gates == (FASTER,)
