"""Metric gates fail closed (exit 3), whatever the evidence looks like, and nothing moves.

In the `staged` world dev holds a release without metrics, and staging's
champion has accuracy 0.95; staging's gates are accuracy >= 0.9 and no more
than 0.02 below the champion. Prod's gate is roc_auc >= 0.9.

A gate whose configuration is bad (a max_relative_drop outside [0, 1), say) is a
config error instead: exit 1 with its file:line, before anything is evaluated.
"""

from __future__ import annotations

from tests.bad_inputs.corpus import Case, check, nothing, params, replaced, with_input

TO_STAGING = ["promote", "--to", "staging", "--from", "dev", "--metrics", "{base}/m.json"]
FINE = '"f1": 0.94, "roc_auc": 0.97'


def _metrics(text: str | bytes):
    return with_input("m.json", text)


def _soak_of_an_hour(world):
    """Prod needs an hour in staging; staging's release is approved for prod (dropping the
    approval instead would be an unsigned change of the trust root, refused first)."""
    from tests.bad_inputs.conftest import mlops

    world.edit("mlops.yaml", "    soak: 0s\n", "    soak: 1h\n")
    mlops(world.clone, "approve", "--env", "prod", "--release", world.ids()["staging"],
          "--key", str(world.base / "alice_ed25519"), "--principal", "alice@example.com")


def _max_drop(metric: str, metrics: str):
    """Staging's regression gate becomes `max_relative_drop: 0.02` on `metric`."""
    def setup(world):
        world.edit("mlops.yaml", "      - metric: accuracy\n        min_absolute_change: -0.02\n",
                   f"      - metric: {metric}\n        max_relative_drop: 0.02\n")
        world.input("m.json", metrics)
    return setup


def _rolled_back(world):
    """A real rollback of staging: the previous release back, with a hold."""
    from tests.bad_inputs.conftest import mlops

    mlops(world.clone, "rollback", "--env", "staging", "--reason", "bad predictions")
    world.git("pull", "-q", "--ff-only", "origin", "main")
    world.input("m.json", '{"accuracy": 0.97, ' + FINE + "}")


def _hold_by_hand(world):
    """The hold is outside the release id: a hand-set one holds too."""
    world.edit("environments/staging/release.yaml", "hold: null",
               "hold:\n  reason: incident 42\n")
    world.input("m.json", '{"accuracy": 0.97, ' + FINE + "}")


GATES = [
    Case("metrics-file-missing", "staged", nothing, TO_STAGING, 3, "/m.json not found"),
    Case("metric-missing", "staged", _metrics("{" + FINE + "}"), TO_STAGING, 3,
         "accuracy-threshold: accuracy is missing from the evaluation metrics"),
    Case("metric-nan", "staged", _metrics('{"accuracy": NaN, ' + FINE + "}"), TO_STAGING, 3,
         "accuracy-threshold: accuracy is NaN"),
    Case("metric-infinity", "staged", _metrics('{"accuracy": Infinity, ' + FINE + "}"),
         TO_STAGING, 3, "accuracy-threshold: accuracy is inf, not a measurement"),
    Case("metric-negative-infinity", "staged", _metrics('{"accuracy": -Infinity, ' + FINE + "}"),
         TO_STAGING, 3, "accuracy-threshold: accuracy is -inf, not a measurement"),
    Case("metric-string", "staged", _metrics('{"accuracy": "0.99", ' + FINE + "}"), TO_STAGING,
         3, "'accuracy' is not a number"),
    Case("metric-boolean", "staged", _metrics('{"accuracy": true, ' + FINE + "}"), TO_STAGING,
         3, "'accuracy' is not a number"),
    Case("metric-null", "staged", _metrics('{"accuracy": null, ' + FINE + "}"), TO_STAGING, 3,
         "'accuracy' is not a number"),
    Case("metric-nested", "staged", _metrics('{"accuracy": {"value": 0.99}}'), TO_STAGING, 3,
         "'accuracy' is not a number"),
    Case("metrics-a-list", "staged", _metrics("[0.99, 0.98]"), TO_STAGING, 3,
         "must be a non-empty JSON object of numbers"),
    Case("metrics-empty-object", "staged", _metrics("{}"), TO_STAGING, 3,
         "must be a non-empty JSON object of numbers"),
    Case("metrics-binary-garbage", "staged", _metrics(bytes(range(256))), TO_STAGING, 3,
         "is unreadable"),
    Case("metrics-a-directory", "staged", nothing,
         ["promote", "--to", "staging", "--from", "dev", "--metrics", "{base}"], 3,
         "is unreadable"),
    Case("metric-below-threshold", "staged", _metrics('{"accuracy": 0.5, ' + FINE + "}"),
         TO_STAGING, 3, "accuracy-threshold: accuracy 0.5 >= 0.9 is false"),
    Case("metric-regresses-against-champion", "staged",
         _metrics('{"accuracy": 0.92, ' + FINE + "}"), TO_STAGING, 3,
         "accuracy-vs-champion: accuracy 0.92 vs champion 0.95: change -0.03, needs >= -0.02"),
    Case("metric-drops-too-far-from-champion", "staged",
         _max_drop("accuracy", '{"accuracy": 0.92, ' + FINE + "}"), TO_STAGING, 3,
         "accuracy-max-drop: accuracy 0.92 vs champion 0.95: drop +3.1579%, "
         "allows at most 2.0000%"),
    Case("max-drop-champion-lacks-the-metric", "staged",
         _max_drop("latency_ms", '{"accuracy": 0.97, "latency_ms": 20, ' + FINE + "}"),
         TO_STAGING, 3, "has no usable latency_ms"),
    Case("plan-fails-closed-too", "staged", _metrics('{"accuracy": 0.5, ' + FINE + "}"),
         [*TO_STAGING, "--plan"], 3, "accuracy-threshold: accuracy 0.5 >= 0.9 is false"),
    Case("soak-not-elapsed", "staged", _soak_of_an_hour,
         ["promote", "--to", "prod", "--from", "staging"], 3, "needs 1.0h"),
    Case("hold-after-rollback", "staged", _rolled_back, TO_STAGING, 3,
         "environment staging is on hold (bad predictions); `mlops promote --clear-hold`"),
    Case("hold-set-by-hand", "staged", _hold_by_hand, TO_STAGING, 3,
         "environment staging is on hold (incident 42)"),
]


@params(GATES)
def test_gate_fails_closed(world, case, capsys):
    check(world, case, capsys)


def _drop_of(value: str):
    return replaced("mlops.yaml", "min_absolute_change: -0.02", f"max_relative_drop: {value}")


TO_STAGING_LOCAL = ["promote", "--to", "staging", "--from", "dev"]
FRACTION = "mlops.yaml:12: max_relative_drop must be a fraction of at least 0 and below 1"
NUMBER = "mlops.yaml:12: max_relative_drop must be a finite number"

GATE_CONFIG = [
    Case("max-drop-negative", "bare", _drop_of("-0.1"), TO_STAGING_LOCAL, 1,
         f"{FRACTION} (0.05 allows a 5% drop), got -0.1"),
    Case("max-drop-one", "bare", _drop_of("1"), TO_STAGING_LOCAL, 1, FRACTION),
    Case("max-drop-a-percentage", "bare", _drop_of("5"), TO_STAGING_LOCAL, 1,
         f"{FRACTION} (0.05 allows a 5% drop), got 5"),
    Case("max-drop-percent-string", "bare", _drop_of("5%"), TO_STAGING_LOCAL, 1, NUMBER),
    Case("max-drop-nan", "bare", _drop_of(".nan"), TO_STAGING_LOCAL, 1, NUMBER),
    Case("max-drop-boolean", "bare", _drop_of("true"), TO_STAGING_LOCAL, 1, NUMBER),
    Case("max-drop-misspelled", "bare",
         replaced("mlops.yaml", "min_absolute_change: -0.02", "max_relative_drops: 0.1"),
         TO_STAGING_LOCAL, 1, "unknown key 'max_relative_drops' in a gate of staging; "
         "did you mean 'max_relative_drop'?"),
]


@params(GATE_CONFIG)
def test_bad_gate_config_is_refused(world, case, capsys):
    check(world, case, capsys)
