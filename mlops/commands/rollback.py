"""`mlops rollback --env ENV [--to RELEASE]`: the previous release again, as a new commit.

Never a force-push: the earlier release's record is read from history and
written back, the pipelines recompiled against its digests, and a hold is set
in the same commit so no automatic promotion undoes the rollback until
someone runs `mlops promote --clear-hold`.
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


def rollback(ctx: Context, opts: RollbackOptions) -> int:
    local = cfg.load_config(ctx.root, ctx.environ)
    environment(local, opts.env)
    check_clean_branch(ctx.root)
    cache = JsonCache(gitops.git_dir(ctx.root) / COMPILE_CACHE)
    doc = in_workspace(ctx, local, lambda ws: _attempt(ctx, ws, opts, cache))
    cache.save()
    ctx.out.result(doc, f"rolled {doc['env']} back to release {doc['release']} (was "
                        f"{doc['previous']}); hold set. Commit {doc['commit'][:12]}")
    return 0


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


def _attempt(ctx: Context, ws: Workspace, opts: RollbackOptions, cache: JsonCache) -> dict:
    config = cfg.load_config(ws.root, ctx.environ)
    env = environment(config, opts.env)
    current, earlier = restore_previous(ws, env, opts.to)
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
            "commit": commit, "hold": hold}
