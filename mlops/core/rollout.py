"""The canary state machine, kept in `release.yaml` under `rollout:`. Pure.

    (none)   --start--> complete (100%): a first release has no baseline to canary against
    (stable) --start--> canary step 1 --promote--> step 2 ... --promote--> complete (100%)
                            \\__________ abort: previous release, 0%, hold __________/

A promote needs a passing analysis of the current step; the last one, to
100%, also needs a release manager's signed approval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from mlops.canaryconfig import Canary
from mlops.core.promotion import passed
from mlops.errors import ConfigError, GateFailed

CANARY, COMPLETE, ABORTED = "canary", "complete", "aborted"
ANALYSIS_MAX_AGE = 3600.0  # an older analysis says little about the traffic now
CLOCK_SKEW = 300.0  # seconds an analysis may seem to come from the future (CI clocks)
FIRST_RELEASE_NOTE = "first release: no baseline"


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def start(canary: Canary, baseline: str | None) -> dict[str, Any]:
    return {"state": CANARY, "step": 1, "percent": canary.steps[0],
            "steps": list(canary.steps), "baseline": baseline, "since": now_utc()}


def first_release(canary: Canary) -> dict[str, Any]:
    """The state of a first release into a canary environment: complete at once.

    A canary needs a stable revision to split traffic with: KServe's Knative
    reconciler splits only when the component already has a rolled-out
    revision (`CanaryTrafficPercent != nil && lastRolledoutRevision != ""` in
    kserve/kserve pkg/controller/v1beta1/inferenceservice/reconcilers/knative/
    ksvc_reconciler.go) and otherwise routes 100% to the latest one. A first
    canary would get all traffic, and its analysis would compare against nothing.
    """
    return {"state": COMPLETE, "percent": 100, "steps": list(canary.steps), "baseline": None,
            "first_release": True, "since": now_utc()}


def in_progress(state: Mapping[str, Any] | None) -> bool:
    return bool(state) and state.get("state") == CANARY  # type: ignore[union-attr]


def require_in_progress(state: Mapping[str, Any] | None, env: str) -> Mapping[str, Any]:
    if not in_progress(state):
        what = f"its last rollout is {state.get('state')}" if state else "no rollout started"
        raise ConfigError(f"no canary in progress in {env} ({what}); "
                          f"`mlops rollout start --env {env}` starts one")
    assert state is not None
    steps, step = state.get("steps"), state.get("step")
    # A hand-edited record must fail here, not as a KeyError inside a promote.
    # Steps within 1-99, increasing, as canary.steps allows: a step of 100 would put the
    # canary at 100% without the approval the last promote needs.
    if not isinstance(steps, list) or not steps or not all(_whole(s) for s in steps) \
            or not all(1 <= s <= 99 for s in steps) \
            or any(a >= b for a, b in zip(steps, steps[1:], strict=False)) \
            or not isinstance(step, int) or not _whole(step) or not 1 <= step <= len(steps):
        raise ConfigError(f"environments/{env}/release.yaml: rollout step {step!r} of steps "
                          f"{steps!r} is not a canary step mlops wrote")
    return state


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_final(state: Mapping[str, Any]) -> bool:
    """True when the next promote takes the canary to 100%."""
    return int(state["step"]) >= len(state["steps"])


def advance(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state after one promote: the next step, or complete at 100%."""
    if is_final(state):
        return {**state, "state": COMPLETE, "step": len(state["steps"]) + 1, "percent": 100,
                "since": now_utc()}
    step = int(state["step"]) + 1
    return {**state, "step": step, "percent": int(state["steps"][step - 1]), "since": now_utc()}


def aborted(state: Mapping[str, Any], release_id: str) -> dict[str, Any]:
    return {**state, "state": ABORTED, "percent": 0, "aborted_release": release_id,
            "since": now_utc()}


class StaleAnalysis(GateFailed):
    """The analysis is older than the age a step may be promoted on (exit 3, as any
    refused analysis); `rollout run`, waiting for an approval, analyses again instead."""


def check_analysis(decision: Mapping[str, Any] | None, release_id: str,
                   state: Mapping[str, Any], env: str, now: float,
                   max_age: float = ANALYSIS_MAX_AGE) -> Mapping[str, Any]:
    """The kept decision record, if it is a pass for exactly this release and step."""
    again = f"`mlops rollout analyze --env {env}`"
    if decision is None:
        raise GateFailed(f"no analysis of the canary in {env} yet; run {again} first")
    where = f"the analysis of {decision.get('release')} at {decision.get('percent')}%"
    if decision.get("release") != release_id or decision.get("step") != state.get("step"):
        raise GateFailed(f"{where} is not of the canary now in {env} (release {release_id} "
                         f"at {state.get('percent')}%); run {again}")
    finished = float(decision.get("finished_at", 0))
    if finished > now + CLOCK_SKEW:  # a record from the future would never grow old
        raise GateFailed(f"{where} is dated in the future; run {again}")
    if now - finished > max_age:
        raise StaleAnalysis(f"{where} is older than {max_age / 60:g} minutes; run {again}")
    if not passed(decision):
        reasons = decision.get("reasons") or ["no reason recorded"]
        raise GateFailed(f"{where} did not pass ({decision.get('result')}): {reasons[0]}")
    return decision
