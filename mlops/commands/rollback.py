"""`mlops rollback --env ENV [--to RELEASE] [--expect RELEASE]`: the previous release again.

Never a force-push: the earlier release's record is read from history and
written back, the pipelines recompiled against its digests, and a hold is set
in the same commit so no automatic promotion undoes the rollback until
someone runs `mlops promote --clear-hold`.

A rollback is a compare-and-swap. When its push is rejected because the
remote moved on, `in_workspace` reruns it on the new head; recomputed from
scratch, it would roll back from whatever runs there now (after a racing
promotion, to the very release the operator wanted gone). So the release it
rolls back from must still be the one expected (`--expect`, else the one the
first attempt saw), and the release it puts back stays the one first chosen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mlops import config as cfg
from mlops import gitops, overlay, trailers
from mlops import release as rel
from mlops.cache import JsonCache
from mlops.commands import Context
from mlops.commands import promote_steps as steps
from mlops.commands._workspace import in_workspace
from mlops.commands.compile import COMPILE_CACHE, environment
from mlops.errors import ConfigError
from mlops.gitops.workspace import Workspace, check_clean_branch


@dataclass(frozen=True)
class RollbackOptions:
    env: str
    to: str | None = None
    reason: str | None = None
    expect: str | None = None  # the release the operator sees now, to roll back from


@dataclass
class Seen:
    """What the first attempt saw; every retry must see the same (see the module doc)."""

    current: str | None = None  # the release rolled back from (abort: the canary)
    target: str | None = None  # the release put back

    def remember(self, current: str, target: str) -> None:
        if self.current is None:
            self.current, self.target = current, target


def rollback(ctx: Context, opts: RollbackOptions) -> int:
    local = cfg.load_config(ctx.root, ctx.environ)
    environment(local, opts.env)
    check_clean_branch(ctx.root)
    cache = JsonCache(gitops.git_dir(ctx.root) / COMPILE_CACHE)
    seen = Seen()
    doc = in_workspace(ctx, local, lambda ws: _attempt(ctx, ws, opts, cache, seen))
    cache.save()
    ctx.out.result(doc, f"rolled {doc['env']} back to release {doc['release']} (was "
                        f"{doc['previous']}); hold set. Commit {doc['commit'][:12]}")
    return 0


def check_expected(ws: Workspace, env: str, actual: str | None, expected: str | None,
                   undone: str) -> None:
    """Refuse, in one line, when `env` no longer runs the release the operator acts on."""
    if expected is None or actual == expected:
        return
    if actual is None:
        raise ConfigError(f"environment {env} has no release, not {expected} as expected; "
                          f"nothing {undone}")
    found = steps.env_promotions(ws, env)
    since = f" (since {found[0][2]} commit {found[0][0][:10]})" if found else ""
    raise ConfigError(
        f"environment {env} runs release {actual}{since}, not {expected} as expected; "
        f"nothing {undone}: see `mlops history --env {env}`, and pass --expect {actual} "
        "to act on what runs now")


def restore_previous(ws: Workspace, env: cfg.Environment, wanted: str | None):
    """(current record, the earlier record to restore) for `env`."""
    current = steps.read_record(ws.root, env.name)
    if current is None:
        raise ConfigError(f"environment {env.name} has no release to roll back")
    for sha, release_id, _action in steps.env_promotions(ws, env.name):
        if release_id == current.release.id or (wanted and release_id != wanted):
            continue
        text = ws.show(sha, f"{overlay.ENVIRONMENTS_DIR}/{env.name}/{rel.RELEASE_FILE}")
        if text:
            return current, rel.parse(text, f"{sha[:10]}:{env.name}/{rel.RELEASE_FILE}")
    if wanted:
        raise ConfigError(f"release {wanted} was never in {env.name} (or is the current one)")
    raise ConfigError(f"environment {env.name} has no earlier release to roll back to")


def _attempt(ctx: Context, ws: Workspace, opts: RollbackOptions, cache: JsonCache,
             seen: Seen) -> dict:
    config = cfg.load_config(ws.root, ctx.environ)
    env = environment(config, opts.env)
    now = steps.read_record(ws.root, env.name)
    check_expected(ws, env.name, now.release.id if now else None,
                   opts.expect or seen.current, "rolled back")
    current, earlier = restore_previous(ws, env, opts.to or seen.target)
    seen.remember(current.release.id, earlier.release.id)
    release = steps.write_overlay(ws.root, env, earlier.release, cache)
    hold = {
        "reason": opts.reason or f"rollback from {current.release.id}",
        "rolled_back_from": current.release.id,
        "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    steps.write_record(ws.root, env.name, release, "rollback", [], None, hold)
    message = trailers.promotion_message("rollback", env.name, release, "rollback", [],
                                         hold="set", previous=current.release.id)
    commit = ws.commit(message)
    ws.push()
    return {"env": env.name, "release": release.id, "previous": current.release.id,
            "expected": seen.current, "commit": commit, "hold": hold}
