"""KServe canaries, moved by commits: start, one step forward, abort.

Each operation gathers its evidence in an isolated clone (the release, gates,
provenance, the kept analysis, an approval), builds a `Transition` and lets
`mlops.core.promotion.decide` turn it into the change or refuse it; then
`changes.commit_change` commits and pushes once. `mlops rollout` and
`mlops rollout run` are the two commands that drive these. A rollout that
reached 100% is then mirrored into MLflow where tracking is configured (the
environment's alias on the release's model version, `services.tracking`).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops import config as cfg
from mlops import trailers, trustroot
from mlops.adapters import gitops
from mlops.adapters.gitops.workspace import Workspace, check_clean_branch
from mlops.cache import JsonCache
from mlops.context import Context
from mlops.core import rollout as state_machine
from mlops.core.decision import rollout_message
from mlops.core.promotion import (
    ROLLBACK,
    Action,
    Message,
    Source,
    Transition,
    decide,
    gate_refusal,
    refuse_hold,
)
from mlops.errors import ConfigError, UsageError
from mlops.records import dataclass
from mlops.services import approvals
from mlops.services import decisions as records
from mlops.services import promotion as steps
from mlops.services.changes import commit_change, in_workspace
from mlops.services.compiler import COMPILE_CACHE
from mlops.services.envdir import EnvDir, environment
from mlops.services.envhistory import Seen, check_expected, env_promotions, restore_previous
from mlops.services.registries import verify_digests
from mlops.services.tracking import mirror_promotion


@dataclass(frozen=True)
class RolloutOptions:
    env: str
    clear_hold: bool = False
    reason: str | None = None
    analysis: Path | None = None
    max_age: float = state_machine.ANALYSIS_MAX_AGE
    expect: str | None = None  # abort: the canary's release, as the operator sees it


def canary_environment(config: cfg.MlopsConfig, name: str) -> cfg.Environment:
    env = environment(config, name)
    if env.canary is None:
        raise UsageError(f"environment {env.name} has no canary: in mlops.yaml; "
                         "add one with steps and an analysis to roll out there")
    if config.previous(env.name) is None:
        raise UsageError(f"environment {env.name} is the first one; a canary rolls out a "
                         "release from the environment before it")
    return env


def _run(ctx: Context, opts: RolloutOptions, attempt) -> dict[str, Any]:
    """Check locally, then run `attempt(ws, config, env, cache)` in a workspace."""
    local = cfg.load_config(ctx.root, ctx.environ)
    canary_environment(local, opts.env)
    check_clean_branch(ctx.root)
    cache = JsonCache(gitops.git_dir(ctx.root) / COMPILE_CACHE)

    landed: dict[str, Any] = {}

    def run(ws: Workspace) -> dict[str, Any]:
        config = cfg.load_config(ws.root, ctx.environ)
        doc = attempt(ws, config, canary_environment(config, opts.env), cache)
        if doc.get("state") == state_machine.COMPLETE and doc.get("commit"):
            record = EnvDir(ws.root, opts.env).read_record()
            landed["complete"] = (config.tracking, record.release if record else None)
        return doc

    doc = in_workspace(ctx, local, run)
    cache.save()
    if "complete" in landed:
        tracking, release = landed["complete"]
        _mirror(ctx, opts.env, tracking, release, doc)
    return doc


def _mirror(ctx: Context, env: str, tracking: cfg.Tracking, release, doc: dict) -> None:
    """After the commit that took the release to 100%: MLflow's alias for `env`."""
    mirrored = mirror_promotion(tracking, env, release) if release is not None else None
    if mirrored is None:
        return
    doc["tracking"] = mirrored.dump()
    warning = mirrored.warning(f"alias {env}")
    if warning:
        ctx.out.note(warning)


def start_rollout(ctx: Context, opts: RolloutOptions) -> dict[str, Any]:
    """A canary of the previous environment's release (or its first release at 100%)."""
    return _run(ctx, opts, lambda ws, config, env, cache: _start(ws, config, env, cache, opts))


def started_text(doc: Mapping[str, Any]) -> str:
    if doc["status"] == "unchanged":
        return f"{doc['env']} already runs a canary of {doc['release']}"
    if doc["status"] == "complete":
        approved = f", approved by {doc['approver']}" if doc["approver"] else ""
        return (f"first release {doc['release']} in {doc['env']} at 100%{approved} (commit "
                f"{doc['commit'][:12]}): {FIRST_RELEASE_WHY}")
    return (f"canary of release {doc['release']} in {doc['env']} at {doc['percent']}% "
            f"(commit {doc['commit'][:12]})")


def _start(ws: Workspace, config, env, cache, opts: RolloutOptions) -> dict[str, Any]:
    source = Source.environment(config.previous(env.name).name)
    current = EnvDir(ws.root, env.name).read_record()
    refuse_hold(current, env.name, opts.clear_hold,
                f"`mlops rollout start --env {env.name} --clear-hold` lifts it with this rollout")
    release = steps.compose_release(ws.root, config, source, None, None, None)
    if current is not None and state_machine.in_progress(current.rollout):
        if current.release.digest == release.digest:
            return {"status": "unchanged", "env": env.name, "release": release.id,
                    "percent": (current.rollout or {}).get("percent"), "commit": None}
        raise ConfigError(f"a canary of {current.release.id} is in progress in {env.name}; "
                          f"promote or abort it before starting {release.id}")
    if current is not None and current.release.digest == release.digest and not current.hold:
        raise ConfigError(f"{env.name} already runs release {release.id}; nothing to roll out")
    gates = steps.evaluate_gates(ws, env, source, release, current)
    if current is None:
        return _first_release(ws, config, env, cache, release, source, gates)
    state = state_machine.start(env.canary, current.release.id)
    trustroot.resolve(ws, config)  # settled before branch code runs: provenance uses it
    release = steps.write_overlay(ws.root, env, release, cache, percent=state["percent"])
    verify_digests(release)
    provenance = steps.verify_provenance(ws, config, release)
    change = decide(
        Transition(Action.ROLLOUT_START, env.name, release, source, gates, rollout=state),
        rollout_message("rollout-start", env.name, release, state,
                        baseline=state["baseline"],
                        hold="cleared" if opts.clear_hold and current.hold else None,
                        provenance=provenance))
    commit = commit_change(ws, change)
    return {"status": "started", "env": env.name, "release": release.id, "from": str(source),
            "percent": state["percent"], "step": state["step"], "steps": state["steps"],
            "baseline": state["baseline"], "gates": gates, "provenance": provenance,
            "commit": commit}


FIRST_RELEASE_WHY = ("no stable release runs there, so there is no baseline to split traffic "
                     "with or to compare against (KServe routes all traffic to the only "
                     "revision); later releases roll out as canaries against this one")


def _first_release(ws: Workspace, config, env, cache, release, source, gates) -> dict:
    """All of the traffic at once, after the offline gates, provenance and the approval."""
    _refuse_a_lost_record(ws, env.name)
    # Read before the branch's pipeline code runs in write_overlay (services/approvals.py);
    # the release's id is known only once its pipelines are compiled.
    found = (approvals.gather(ws, config, env, steps.release_id_if_known(ws.root, release))
             if trustroot.approval_needed(ws, config, env) else None)
    release = steps.write_overlay(ws.root, env, release, cache)  # no canaryTrafficPercent
    verify_digests(release)
    provenance = steps.verify_provenance(ws, config, release)
    failed = gate_refusal(gates)
    if failed is not None:  # before asking for an approval, as every gated entry does
        raise failed
    approval = found.of(release) if found is not None else None
    state = state_machine.first_release(env.canary)
    change = decide(
        Transition(Action.ROLLOUT_COMPLETE, env.name, release, source, gates, approval,
                   needs_approval=env.approval, rollout=state),
        Message(subject=f"canary({env.name}): release {release.id} at 100% "
                        f"({state_machine.FIRST_RELEASE_NOTE})",
                extra=[(trailers.CANARY, "100"),
                       (trailers.NOTE, state_machine.FIRST_RELEASE_NOTE)],
                body_extra=[f"First release into {env.name}: {FIRST_RELEASE_WHY}."],
                provenance=provenance))
    approver = change.approver
    commit = commit_change(ws, change)
    return {"status": "complete", "env": env.name, "release": release.id, "from": str(source),
            "state": state["state"], "percent": 100, "step": None, "steps": state["steps"],
            "baseline": None, "first_release": True, "approver": approver, "gates": gates,
            "provenance": provenance, "commit": commit}


def _refuse_a_lost_record(ws: Workspace, env: str) -> None:
    """No release.yaml, but history shows releases entered `env`: the record was deleted
    (by hand, or by a push), not never written. Taking the next release straight to 100%
    would skip its canary, so refuse and say how to restore it."""
    found = env_promotions(ws, env)
    if found:
        sha, release_id, action = found[0]
        raise ConfigError(
            f"environment {env} has no {EnvDir(ws.root, env).record_display}, but "
            f"release {release_id} entered it ({action}, commit {sha[:10]}); restore the "
            f"record (e.g. `git revert` the commit that deleted it) rather than roll out a "
            "first release past the canary")


def promote_step(ctx: Context, opts: RolloutOptions, decision) -> dict[str, Any]:
    """One step forward, committed and pushed; the decision record is then used up."""
    doc = _run(ctx, opts, lambda ws, config, env, cache:
               _promote(ws, config, env, cache, decision, opts))
    records.forget_decision(ctx.root, opts.env)
    return doc


def promoted_text(doc: Mapping[str, Any]) -> str:
    where = "100% (rollout complete)" if doc["state"] == "complete" else f"{doc['percent']}%"
    return (f"canary of release {doc['release']} in {doc['env']} now at {where}"
            f"{' approved by ' + doc['approver'] if doc['approver'] else ''} "
            f"(commit {doc['commit'][:12]})")


def _promote(ws: Workspace, config, env, cache, decision, opts: RolloutOptions) -> dict:
    current = EnvDir(ws.root, env.name).read_record()
    if current is None:
        raise ConfigError(f"environment {env.name} has no release yet")
    state = state_machine.require_in_progress(current.rollout, env.name)
    state_machine.check_analysis(decision, current.release.id, state, env.name, time.time(),
                                 opts.max_age)
    approval = None
    if state_machine.is_final(state):
        approval = approvals.find_approval(ws, config, env, current.release)
    new_state = state_machine.advance(state)
    percent = None if new_state["state"] == state_machine.COMPLETE else new_state["percent"]
    release = steps.write_overlay(ws.root, env, current.release, cache, percent=percent)
    steps.check_still_approved(release, current.release if approval else None)
    action = Action.ROLLOUT_COMPLETE if percent is None else Action.ROLLOUT_STEP
    change = decide(
        Transition(action, env.name, release, Source.parse(current.promoted_from),
                   current.gates, approval, needs_approval=state_machine.is_final(state),
                   rollout=new_state, gated=False, kept_approval=current.approval),
        rollout_message(action.value, env.name, release, new_state,
                        decision=decision))
    commit = commit_change(ws, change)
    return {"env": env.name, "release": release.id, "state": new_state["state"],
            "percent": new_state["percent"], "step": new_state["step"],
            "approver": approval["approver"] if approval else None,
            "analysis": decision.get("result"), "commit": commit}


def abort_canary(ctx: Context, opts: RolloutOptions) -> dict[str, Any]:
    decision = records.load_decision(ctx.root, opts.env)
    seen = Seen()
    doc = _run(ctx, opts, lambda ws, config, env, cache:
               _abort(ws, config, env, cache, decision, opts, seen))
    records.forget_decision(ctx.root, opts.env)
    return doc


def aborted_text(doc: Mapping[str, Any]) -> str:
    return (f"aborted the canary of {doc['aborted']} in {doc['env']}: release "
            f"{doc['release']} is back, canary at 0%, hold set (commit {doc['commit'][:12]})")


def _abort(ws: Workspace, config, env, cache, decision, opts: RolloutOptions,
           seen: Seen) -> dict:
    current = EnvDir(ws.root, env.name).read_record()
    state = state_machine.require_in_progress(current.rollout if current else None, env.name)
    assert current is not None  # require_in_progress raised otherwise
    # Compare-and-swap, as in `mlops rollback`: a retry on a moved remote aborts the canary
    # the operator saw, back to the baseline it had, or nothing.
    check_expected(ws, env.name, current.release.id, opts.expect or seen.current, "aborted")
    if not state.get("baseline"):
        raise ConfigError(f"the canary in {env.name} has no previous release to return to; "
                          f"`mlops rollback --env {env.name}` cannot help either")
    if seen.target is not None and state["baseline"] != seen.target:
        raise ConfigError(f"the canary of {current.release.id} in {env.name} is now measured "
                          f"against {state['baseline']}, not {seen.target}; nothing aborted: "
                          f"see `mlops history --env {env.name}`")
    _, earlier = restore_previous(ws, env, state["baseline"])
    # The baseline is found by trailers anyone can write: in a gated environment only a
    # release a manager approved goes back to full traffic, as in `mlops rollback`.
    gated = trustroot.approval_needed(ws, config, env)
    if gated:
        approvals.find_approval(ws, config, env, earlier.release, after_hold=False)
    seen.remember(current.release.id, state["baseline"])
    release = steps.write_overlay(ws.root, env, earlier.release, cache, percent=0)
    steps.check_still_approved(release, earlier.release if gated else None)
    verify_digests(release)
    steps.verify_provenance(ws, config, release)
    hold = {"reason": opts.reason or f"canary of {current.release.id} aborted",
            "rolled_back_from": current.release.id, "since": state_machine.now_utc()}
    new_state = state_machine.aborted(state, current.release.id)
    if decision is not None and decision.get("release") != current.release.id:
        decision = None  # a record about another canary says nothing about this abort
    change = decide(
        Transition(Action.ROLLOUT_ABORT, env.name, release, ROLLBACK, hold=hold,
                   rollout=new_state),
        rollout_message("rollout-abort", env.name, release, new_state,
                        decision=decision, hold="set", previous=current.release.id))
    commit = commit_change(ws, change)
    return {"env": env.name, "release": release.id, "aborted": current.release.id,
            "percent": 0, "hold": hold, "commit": commit}
