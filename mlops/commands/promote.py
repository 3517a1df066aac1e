"""`mlops promote --to ENV (--build FILE | --from ENV)`: one gated commit per promotion.

Each attempt works in an isolated clone of the remote branch: it reads the
config and the environments there (the truth, not the user's work tree),
computes the release, evaluates the gates and the approval, verifies every
digest in the registry, writes the overlay, commits once and pushes. A push
rejected because the remote moved on is retried from a fresh fetch, with the
whole promotion recomputed on the new head (bounded backoff).

With MLflow tracking configured, a promotion that landed then sets the
registered-model alias named after the environment on the release's model
version. Git first, the mirror second: MLflow out of reach is one warning
line and `tracking.ok: false`, and the promotion still exits 0.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import config as cfg
from mlops import imagecheck, modeluri, trustroot
from mlops.adapters import gitops
from mlops.adapters.gitops.workspace import check_clean_branch
from mlops.buildrecord import read_build_record
from mlops.cache import JsonCache
from mlops.commands import Context
from mlops.core.promotion import (
    BUILD,
    Action,
    Message,
    Source,
    Transition,
    decide,
    gate_refusal,
    record_of,
    refuse_hold,
)
from mlops.errors import ApprovalError, MlopsError, UsageError
from mlops.records import dataclass, replace
from mlops.release import Release
from mlops.services import approvals
from mlops.services import promotion as steps
from mlops.services.changes import commit_change, in_workspace
from mlops.services.compiler import COMPILE_CACHE
from mlops.services.envdir import EnvDir, environment
from mlops.services.registries import Registries, verify_digests

if TYPE_CHECKING:
    from mlops.services.tracking import Mirrored


@dataclass(frozen=True)
class PromoteOptions:
    to: str
    source: str | None = None
    build: Path | None = None
    metrics: Path | None = None
    model_uri: str | None = None
    plan: bool = False
    pr: bool = False
    clear_hold: bool = False


@dataclass
class Outcome:
    status: str  # promoted | unchanged | planned | refused (by its gates)
    env: str
    release: Release
    source: str
    gates: list[dict[str, Any]]
    commit: str | None = None
    pushed_to: str | None = None
    approver: str | None = None
    diff: str = ""
    previous: str | None = None
    approval_missing: str | None = None  # a plan's: why promote would exit 4
    provenance: list[dict] | None = None  # verified per image; None: no builders trusted
    tracking: cfg.Tracking = cfg.Tracking()  # the branch's mlops.yaml, with the environment


def promote(ctx: Context, opts: PromoteOptions) -> int:
    local = cfg.load_config(ctx.root, ctx.environ)
    target = environment(local, opts.to)
    source = _check_order(local, target, opts)
    if opts.model_uri is not None:  # before the registry is asked about the build record
        modeluri.check(opts.model_uri, target.model_schemes, target.name)
    build = read_build_record(opts.build) if opts.build else None
    metrics = _metrics(ctx, opts.metrics) if opts.metrics else None
    check_clean_branch(ctx.root)
    registries = Registries()  # one HTTP session per host for every attempt
    if build is not None:  # asked while the remote is cloned; each attempt checks the answers
        registries.prefetch(imagecheck.lookups_ahead(local.registry, build.entries()))
    cache = JsonCache(gitops.git_dir(ctx.root) / COMPILE_CACHE)
    outcome = in_workspace(
        ctx, local, lambda ws: _attempt(ctx, ws, opts, source, build, metrics, cache, registries)
    )
    cache.save()
    return _report(ctx, outcome, _mirror(ctx, outcome, opts))


def _metrics(ctx: Context, given: Path) -> dict[str, float]:
    # Imported here: run records and their store are needed only with --metrics.
    from mlops.services.evidence import read_metrics

    return read_metrics(given, ctx.root)


def _mirror(ctx: Context, outcome: Outcome, opts: PromoteOptions) -> Mirrored | None:
    """MLflow's alias for the environment, once the commit is on the branch (a --pr
    promotion has not entered the environment yet). A rerun that finds the release
    there already sets it again: the way to repair an alias MLflow missed."""
    if outcome.status not in ("promoted", "unchanged") or opts.pr or \
            not outcome.tracking.enabled:
        return None
    from mlops.services.tracking import mirror_promotion  # only with tracking configured

    mirrored = mirror_promotion(outcome.tracking, outcome.env, outcome.release)
    warning = mirrored.warning(f"alias {outcome.env}") if mirrored else None
    if warning:
        ctx.out.note(warning)
    return mirrored


def _check_order(config: cfg.MlopsConfig, target: cfg.Environment,
                 opts: PromoteOptions) -> Source:
    """The source: the build record for the first environment, else the environment before."""
    if target.canary is not None:
        raise UsageError(f"{target.name} rolls out as a canary: "
                         f"`mlops rollout start --env {target.name}`")
    if bool(opts.build) == bool(opts.source):
        raise UsageError("give exactly one of --build FILE (first environment) or --from ENV")
    first = config.environments[0].name if config.environments else None
    if opts.build:
        if target.name != first:
            before = config.previous(target.name)
            raise UsageError(
                f"--build promotes into the first environment ({first}) only; "
                f"use --from {before.name if before else first} --to {target.name}"
            )
        return BUILD
    source = environment(config, opts.source or "")
    expected = config.previous(target.name)
    if expected is None or expected.name != source.name:
        want = expected.name if expected else "a --build record"
        raise UsageError(
            f"cannot promote {source.name} -> {target.name}: environments move in order "
            f"({' -> '.join(e.name for e in config.environments)}); {target.name} takes "
            f"releases from {want}"
        )
    return Source.environment(source.name)


def _attempt(ctx, ws, opts, source: Source, build, metrics, cache, registries) -> Outcome:
    config = cfg.load_config(ws.root, ctx.environ)
    target = environment(config, opts.to)
    current = EnvDir(ws.root, target.name).read_record()
    previous = current.release.id if current else None  # what it runs now, in every outcome
    refuse_hold(current, target.name, opts.clear_hold)
    checking, rendering = steps.Background("registry-checks"), steps.Background("render")
    release = steps.compose_release(ws.root, config, source, build, metrics, opts.model_uri,
                                    registries, checking)
    # What git says about trust and approvals is read before write_overlay runs the
    # branch's pipeline code, which could rewrite the clone's .git (services/approvals.py).
    # Its error waits: a release already in place is "unchanged" whatever the trust root.
    try:
        gated = trustroot.approval_needed(ws, config, target)
        found = _approvals(ws, config, target, release, gated)
        results = steps.evaluate_gates(ws, target, source, release, current)  # soak: git
        read_first: MlopsError | None = None
    except MlopsError as exc:
        read_first = exc
    try:
        release = steps.write_overlay(ws.root, target, release, cache, rendering=rendering)
    finally:
        try:
            checking.wait()  # a record the registry refuses is the error, before the overlay's
        except BaseException:
            rendering.wait_quietly()  # no kubectl left running in a workspace being removed
            raise
    if current is not None and current.release.digest == release.digest:
        if not (opts.clear_hold and current.hold):
            rendering.wait()
            ws.refresh()
            return Outcome("unchanged", target.name, release, str(source),
                           [dict(g) for g in current.gates], previous=previous,
                           tracking=config.tracking)
    if read_first is not None:
        rendering.wait_quietly()
        raise read_first
    try:
        approval, missing = _approval(found, release, opts)
        verify_digests(release, registries)
        provenance = steps.verify_provenance(ws, config, release, registries)
    finally:
        rendering.wait()  # an overlay that does not render is the error, before the gates'
    transition = Transition(Action.PROMOTE, target.name, release, source, results, approval,
                            needs_approval=gated)
    if not opts.plan and gate_refusal(results) is not None:  # the table, then exit 3
        return Outcome("refused", target.name, release, str(source), results,
                       previous=previous, provenance=provenance)
    if opts.plan:
        EnvDir(ws.root, target.name).write_record(record_of(transition))
        planned = _planned(ws, target.name, release, str(source), results, approval, missing)
        return replace(planned, previous=previous, provenance=provenance)
    change = decide(transition, Message(
        hold_note="cleared" if opts.clear_hold and current and current.hold else None,
        provenance=provenance))
    ref = f"refs/heads/mlops/promote/{target.name}/{release.id}" if opts.pr else None
    commit = commit_change(ws, change, ref)
    return Outcome("promoted", target.name, release, str(source), results, commit,
                   ref or f"refs/heads/{ws.branch}", change.approver,
                   previous=previous, provenance=provenance, tracking=config.tracking)


def _approvals(ws, config, target, release, gated: bool) -> approvals.Approvals | None:
    """The target's approvals, read from git; of this release only when compiling cannot
    change its id, else of any."""
    if not gated:
        return None
    return approvals.gather(ws, config, target, steps.release_id_if_known(ws.root, release))


def _approval(found: approvals.Approvals | None, release, opts: PromoteOptions):
    """(approval, why it is missing): a plan reports a missing approval instead of raising,
    so that it can print the release id a release manager must approve."""
    if found is None:
        return None, None
    try:
        return found.of(release, evidence_flags(opts)), None
    except ApprovalError as exc:
        if not opts.plan:
            raise
        return None, exc.message


def evidence_flags(opts: PromoteOptions) -> str:
    """The evidence options an approval must repeat to name the same release."""
    flags = f" --metrics {opts.metrics}" if opts.metrics else ""
    return flags + (f" --model-uri {opts.model_uri}" if opts.model_uri else "")


def _planned(ws, env, release, source, results, approver, missing) -> Outcome:
    diff = ws.uncommitted()
    ws.refresh()
    return Outcome("planned", env, release, source, results, diff=diff,
                   approver=approver["approver"] if approver else None,
                   approval_missing=missing)


def _report(ctx: Context, outcome: Outcome, mirrored: Mirrored | None = None) -> int:
    doc = {
        **({"ok": False} if outcome.status == "refused" else {}),
        "status": outcome.status,
        "env": outcome.env,
        "release": outcome.release.id,
        "from": outcome.source,
        "previous": outcome.previous,
        "commit": outcome.commit,
        "pushed_to": outcome.pushed_to,
        "approver": outcome.approver,
        "images": outcome.release.image_refs(),
        "pipelines": dict(outcome.release.pipelines),
        "metrics": {k: (v if math.isfinite(v) else str(v))
                    for k, v in outcome.release.metrics.items()},
        "gates": outcome.gates,
        "provenance": outcome.provenance,
    }
    if mirrored is not None:
        doc["tracking"] = mirrored.dump()
    if outcome.status == "planned":
        doc["diff"] = outcome.diff
        doc["approval"] = _plan_approval(outcome)
    ctx.out.result(doc, _human(outcome) + _mirrored_line(mirrored))
    if outcome.status == "planned" and outcome.approval_missing:  # promote's own order
        raise ApprovalError(outcome.approval_missing)
    if outcome.status in ("planned", "refused"):
        failed = gate_refusal(outcome.gates)
        if failed is not None:
            raise failed
    return 0


def _mirrored_line(mirrored: Mirrored | None) -> str:
    return mirrored.alias_line() if mirrored is not None else ""


def _plan_approval(o: Outcome) -> dict[str, Any] | None:
    """What a release manager approves: this very id (evidence included), for this env."""
    if o.approver is None and o.approval_missing is None:
        return None
    return {"release": o.release.id, "digest": o.release.digest, "env": o.env,
            "approver": o.approver, "missing": o.approval_missing}


def _plan_verdict(o: Outcome) -> str:
    """What the promotion would do, said before the gates and the diff that show why."""
    if any(g["result"] != "pass" for g in o.gates):
        return " would be refused (a gate fails)"
    return " would need an approval" if o.approval_missing else ""


def _human(o: Outcome) -> str:
    head = {
        "promoted": f"promoted release {o.release.id} from {o.source} to {o.env} "
                    f"({o.commit[:12] if o.commit else ''} -> {o.pushed_to})",
        "unchanged": f"{o.env} already runs release {o.release.id}; nothing to do",
        "planned": f"plan: release {o.release.id} from {o.source} to {o.env}"
                   f"{_plan_verdict(o)}; nothing was written, committed or pushed",
        "refused": f"refused: release {o.release.id} from {o.source} to {o.env} did not pass "
                   f"its gates; nothing was committed",
    }[o.status]
    lines = [head]
    lines += [f"  {g['result']:<4} {g['gate']}: {g['detail']}" for g in o.gates]
    if o.provenance:
        builders = ", ".join(sorted({p["builder"] for p in o.provenance}))
        lines.append(f"  provenance verified for {len(o.provenance)} image(s), built by "
                     f"{builders}")
    if o.approver:
        lines.append(f"  approved by {o.approver}")
    if o.approval_missing:
        lines.append(f"  needs approval of {o.release.id} (content {o.release.digest}): "
                     f"{o.approval_missing}")
    if o.status == "planned":
        lines.append(o.diff.rstrip())
    return "\n".join(lines)
