"""`mlops history [--env ENV]`: promotions, rollbacks and approvals, from git trailers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mlops import config as cfg
from mlops import trailers as tr
from mlops.adapters.gitops.workspace import Commit, Workspace, identity, remote_url
from mlops.commands import Context
from mlops.services.envdir import environment

ACTIONS = ("promote", "rollback", "approve", "rollout-start", "rollout-step",
           "rollout-complete", "rollout-abort")


@dataclass(frozen=True)
class HistoryOptions:
    env: str | None = None
    limit: int = 50


def history(ctx: Context, opts: HistoryOptions) -> int:
    config = cfg.load_config(ctx.root, ctx.environ)
    env = environment(config, opts.env).name if opts.env is not None else None
    url = remote_url(ctx.root, config.git.remote)
    with Workspace(url, config.git.branch, reference=ctx.root, who=identity(ctx.root),
                   note=ctx.out.note) as ws:
        entries = [entry(c) for c in ws.log() if _wanted(c, env)][: opts.limit]
    ctx.out.result({"env": env, "entries": entries}, _human(entries))
    return 0


def _wanted(commit: Commit, env: str | None) -> bool:
    return commit.trailer(tr.ACTION) in ACTIONS and (
        env is None or commit.trailer(tr.ENVIRONMENT) == env)


def entry(commit: Commit) -> dict:
    when = dt.datetime.fromtimestamp(commit.time, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "commit": commit.sha,
        "time": when,
        "action": commit.trailer(tr.ACTION),
        "env": commit.trailer(tr.ENVIRONMENT),
        "release": commit.trailer(tr.RELEASE) or commit.trailer(tr.APPROVE),
        "from": commit.trailer(tr.FROM),
        "digests": tr.pairs(commit.trailer_all(tr.DIGEST)),
        "pipelines": tr.pairs(commit.trailer_all(tr.PIPELINE)),
        "gates": tr.pairs(commit.trailer_all(tr.GATE)),
        "approver": commit.trailer(tr.APPROVER),
        "hold": commit.trailer(tr.HOLD),
        "canary": commit.trailer(tr.CANARY),
        "analysis": commit.trailer(tr.ANALYSIS),
        "provenance": tr.pairs(commit.trailer_all(tr.PROVENANCE)),
        "note": commit.trailer(tr.NOTE),
        "subject": commit.subject,
    }


def _human(entries: list[dict]) -> str:
    if not entries:
        return "no promotions yet"
    lines = []
    for e in entries:
        gates = ", ".join(f"{k}={v}" for k, v in e["gates"].items()) or "no gates"
        extra = f"  approver {e['approver']}" if e["approver"] else ""
        hold = f"  hold {e['hold']}" if e["hold"] else ""
        hold += f"  canary {e['canary']}%" if e["canary"] else ""
        hold += f"  provenance {len(e['provenance'])} signed" if e["provenance"] else ""
        hold += f"  ({e['note']})" if e["note"] else ""
        lines.append(f"{e['time']}  {e['commit'][:10]}  {e['action']:<16} {e['env']:<8} "
                     f"{e['release']}  from {e['from'] or '-'}  [{gates}]{extra}{hold}")
    return "\n".join(lines)
