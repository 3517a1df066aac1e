"""`mlops approve --env ENV --release ID`: a release manager's signed consent, as a commit.

The approval is an empty commit signed with the release manager's SSH key
(git's gpg.format=ssh), with trailers naming the release and the environment.
`mlops promote` accepts it only if `git verify-commit` checks it against the
repository's allowed-signers file and the signer is a listed release manager.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops import config as cfg
from mlops import rollout, trailers
from mlops.commands import Context
from mlops.commands._workspace import in_workspace
from mlops.commands.compile import environment
from mlops.commands.promote_steps import read_record
from mlops.errors import ConfigError, UsageError
from mlops.gitops.workspace import Workspace, identity, signing_key


@dataclass(frozen=True)
class ApproveOptions:
    env: str
    release: str
    key: Path | None = None
    principal: str | None = None


def approve(ctx: Context, opts: ApproveOptions) -> int:
    local = cfg.load_config(ctx.root, ctx.environ)
    target = environment(local, opts.env)
    key = _key(ctx, opts)
    who = identity(ctx.root)
    principal = opts.principal or who["email"]
    who = {**who, "email": principal}
    commit = in_workspace(ctx, local, lambda ws: _attempt(ctx, ws, target.name, opts, key,
                                                           principal), who=who)
    doc = {"approved": opts.release, "env": target.name, "approver": principal,
           "commit": commit}
    ctx.out.result(doc, f"{principal} approved release {opts.release} for {target.name} "
                        f"(commit {commit[:12]})")
    return 0


def _key(ctx: Context, opts: ApproveOptions) -> Path:
    key = opts.key or signing_key(ctx.root)
    if key is None:
        raise UsageError("no signing key: pass --key PATH (an SSH private key) "
                         "or set git's user.signingkey")
    if not key.expanduser().is_file():
        raise UsageError(f"signing key {key} not found")
    return key.expanduser().resolve()


def _in_canary(ws: Workspace, env: str, release_id: str) -> bool:
    """A canary of the release in `env` waits for this approval to reach 100%."""
    record = read_record(ws.root, env)
    return (record is not None and record.release.id == release_id
            and rollout.in_progress(record.rollout))


def _attempt(ctx, ws: Workspace, env: str, opts: ApproveOptions, key: Path, principal: str):
    config = cfg.load_config(ws.root, ctx.environ)
    source = config.previous(env)
    where = source.name if source else env
    record = read_record(ws.root, where)
    if _in_canary(ws, env, opts.release):
        record = read_record(ws.root, env)
    if record is None or record.release.id != opts.release:
        now = record.release.id if record else "no release"
        raise ConfigError(
            f"release {opts.release} is not the one waiting in {where} ({where} has {now}); "
            f"approve the release about to enter {env}"
        )
    commit = ws.commit(trailers.approval_message(env, opts.release, principal),
                       allow_empty=True, signing_key=key)
    ws.push()
    return commit
