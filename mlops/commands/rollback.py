"""`mlops rollback --env ENV [--to RELEASE] [--expect RELEASE]`: the previous release again.

Never a force-push: the earlier release's record is read from history and
written back, the pipelines recompiled against its digests, and a hold is set
in the same commit so no automatic promotion undoes the rollback until
someone runs `mlops promote --clear-hold`.

With MLflow tracking configured, the environment's alias goes back with it,
to the model version of the release put back, once the commit landed (as a
promotion sets it: MLflow out of reach is a warning, never a failed rollback).

A rollback is a compare-and-swap. When its push is rejected because the
remote moved on, `in_workspace` reruns it on the new head; recomputed from
scratch, it would roll back from whatever runs there now (after a racing
promotion, to the very release the operator wanted gone). So the release it
rolls back from must still be the one expected (`--expect`, else the one the
first attempt saw), and the release it puts back stays the one first chosen.
"""

from __future__ import annotations

import datetime as dt

from mlops import config as cfg
from mlops import trustroot
from mlops.adapters import gitops
from mlops.adapters.gitops.workspace import Workspace, check_clean_branch
from mlops.cache import JsonCache
from mlops.commands import Context
from mlops.core import rollout as state_machine
from mlops.core.promotion import ROLLBACK, Action, Message, Transition, decide
from mlops.errors import ConfigError
from mlops.records import dataclass
from mlops.release import Release
from mlops.services import approvals
from mlops.services import promotion as steps
from mlops.services.changes import commit_change, in_workspace
from mlops.services.compiler import COMPILE_CACHE
from mlops.services.envdir import EnvDir, environment
from mlops.services.envhistory import Seen, check_expected, restore_previous
from mlops.services.tracking import mirror_promotion


@dataclass(frozen=True)
class RollbackOptions:
    env: str
    to: str | None = None
    reason: str | None = None
    expect: str | None = None  # the release the operator sees now, to roll back from


def rollback(ctx: Context, opts: RollbackOptions) -> int:
    local = cfg.load_config(ctx.root, ctx.environ)
    environment(local, opts.env)
    check_clean_branch(ctx.root)
    cache = JsonCache(gitops.git_dir(ctx.root) / COMPILE_CACHE)
    seen = Seen()
    doc, tracking, release = in_workspace(ctx, local,
                                          lambda ws: _attempt(ctx, ws, opts, cache, seen))
    cache.save()
    mirrored = mirror_promotion(tracking, doc["env"], release)
    alias = ""
    if mirrored is not None:
        doc["tracking"] = mirrored.dump()
        warning = mirrored.warning(f"alias {doc['env']}")
        if warning:
            ctx.out.note(warning)
        alias = mirrored.alias_line()
    ctx.out.result(doc, f"rolled {doc['env']} back to release {doc['release']} (was "
                        f"{doc['previous']}); hold set. Commit {doc['commit'][:12]}{alias}")
    return 0


def _attempt(ctx: Context, ws: Workspace, opts: RollbackOptions, cache: JsonCache,
             seen: Seen) -> tuple[dict, cfg.Tracking, Release]:
    config = cfg.load_config(ws.root, ctx.environ)
    env = environment(config, opts.env)
    now = EnvDir(ws.root, env.name).read_record()
    if now is not None and state_machine.in_progress(now.rollout):
        # Written without canaryTrafficPercent, the earlier release would be KServe's
        # latest revision at 100%, served by the latest *ready* one, the canary, until it
        # starts (ksvc_reconciler.go); abort keeps the stable revision at 100% instead.
        raise ConfigError(
            f"a canary of {now.release.id} is in progress in {env.name}; "
            f"`mlops rollout abort --env {env.name}` returns it to its baseline (a rollback "
            "now would send all traffic to the canary until the earlier release starts)")
    check_expected(ws, env.name, now.release.id if now else None,
                   opts.expect or seen.current, "rolled back")
    current, earlier = restore_previous(ws, env, opts.to or seen.target)
    # History is anyone's to write: in a gated environment only what a manager approved
    # goes back (gated as the trust root has it, so an unsigned commit cannot drop that).
    gated = trustroot.approval_needed(ws, config, env)
    if gated:
        approvals.find_approval(ws, config, env, earlier.release, after_hold=False)
    seen.remember(current.release.id, earlier.release.id)
    release = steps.write_overlay(ws.root, env, earlier.release, cache)
    steps.check_still_approved(release, earlier.release if gated else None)
    hold = {
        "reason": opts.reason or f"rollback from {current.release.id}",
        "rolled_back_from": current.release.id,
        "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    change = decide(Transition(Action.ROLLBACK, env.name, release, ROLLBACK, hold=hold),
                    Message(hold_note="set", previous=current.release.id))
    commit = commit_change(ws, change)
    doc = {"env": env.name, "release": release.id, "previous": current.release.id,
           "expected": seen.current, "commit": commit, "hold": hold}
    return doc, config.tracking, release
