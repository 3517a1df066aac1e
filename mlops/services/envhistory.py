"""An environment's history, from the commits that changed its release record.

Promotions, rollbacks and canary steps all leave a commit with trailers
(`mlops.trailers`); soak time, rollback targets and compare-and-swap checks
read them back here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from mlops import config as cfg
from mlops import release as rel
from mlops import trailers
from mlops.adapters.gitops.workspace import Workspace
from mlops.core import revocations
from mlops.errors import ConfigError
from mlops.records import dataclass
from mlops.services.envdir import EnvDir


def env_promotions(ws: Workspace, env: str) -> list[tuple[str, str, str]]:
    """(commit, release id, action) of every change to `env`'s release, newest first."""
    found = []
    for commit in ws.log([EnvDir(ws.root, env).record_display]):
        release_id = commit.trailer(trailers.RELEASE)
        if release_id and commit.trailer(trailers.ENVIRONMENT) == env:
            found.append((commit.sha, release_id, commit.trailer(trailers.ACTION) or "promote"))
    return found


def entered_at(ws: Workspace, source: str, release_id: str) -> float | None:
    """When the release last entered `source`, from the promotion commits' trailers; None
    when no commit says so, or when the one that does has a date git cannot print (the
    soak gate then fails: a committer writes the date)."""
    if source == "build":
        return None
    for commit in ws.log([EnvDir(ws.root, source).record_display]):
        if (commit.trailer(trailers.RELEASE) == release_id
                and commit.trailer(trailers.ENVIRONMENT) == source):
            return float(commit.time) if commit.time is not None else None
    return None


@dataclass
class Seen:
    """What the first attempt saw; every retry must see the same (see the module doc)."""

    current: str | None = None  # the release rolled back from (abort: the canary)
    target: str | None = None  # the release put back

    def remember(self, current: str, target: str) -> None:
        if self.current is None:
            self.current, self.target = current, target


def check_expected(ws: Workspace, env: str, actual: str | None, expected: str | None,
                   undone: str) -> None:
    """Refuse, in one line, when `env` no longer runs the release the operator acts on."""
    if expected is None or actual == expected:
        return
    if actual is None:
        raise ConfigError(f"environment {env} has no release, not {expected} as expected; "
                          f"nothing {undone}")
    found = env_promotions(ws, env)
    since = f" (since {found[0][2]} commit {found[0][0][:10]})" if found else ""
    raise ConfigError(
        f"environment {env} runs release {actual}{since}, not {expected} as expected; "
        f"nothing {undone}: see `mlops history --env {env}`, and pass --expect {actual} "
        "to act on what runs now")


def _earlier_releases(ws: Workspace, env: str, skip_rolled_back: bool) -> Iterator[tuple[str, str]]:
    """(commit, release id) of each change to `env`'s release, newest first. Skipping
    releases rolled back since they last entered, `mlops rollback` twice goes further
    back, not to the release the first one took away (whose approvals lapsed with it)."""
    revoked = revocations_in(ws, env) if skip_rolled_back else []
    is_ancestor = ancestry(ws)
    for sha, release_id, _action in env_promotions(ws, env):
        if not revocations.rolled_back_since(sha, release_id, revoked, is_ancestor):
            yield sha, release_id


def revocations_in(ws: Workspace, env: str) -> list[revocations.Revocation]:
    """Every rollback or abort of a release in `env` on HEAD's history, newest first: the
    commits that changed its record and left it holding `rolled_back_from`
    (mlops.core.revocations). Only records that mention it are parsed."""
    where = EnvDir(ws.root, env)
    shas = ws.changed(where.record_display)
    blobs = ws.show_many([f"{sha}:{where.record_display}" for sha in shas])
    return revocations.from_holds(
        (sha, _hold(where, blob, f"{sha[:10]}:{where.record_display}"))
        for sha, blob in zip(shas, blobs, strict=True)
        if blob is not None and b"rolled_back_from" in blob)


def _hold(where: EnvDir, blob: bytes, display: str) -> Any:
    """The record's hold, or None when the record cannot be read (it then revokes nothing:
    whoever wrote it could as well have deleted the hold)."""
    try:
        return where.parse_record(blob.decode("utf-8"), display).hold
    except (ConfigError, UnicodeDecodeError):
        return None


def ancestry(ws: Workspace) -> revocations.IsAncestor:
    """`ws.is_ancestor`, each pair asked of git once."""
    @functools.cache
    def is_ancestor(older: str, newer: str) -> bool:
        return ws.is_ancestor(older, newer)
    return is_ancestor


def restore_previous(ws: Workspace, env: cfg.Environment, wanted: str | None):
    """(current record, the earlier record to restore) for `env`."""
    current = EnvDir(ws.root, env.name).read_record()
    if current is None:
        raise ConfigError(f"environment {env.name} has no release to roll back")
    for sha, release_id in _earlier_releases(ws, env.name, skip_rolled_back=not wanted):
        if release_id == current.release.id or (wanted and release_id != wanted):
            continue
        text = ws.show(sha, EnvDir(ws.root, env.name).record_display)
        if not text:
            continue
        earlier = rel.parse(text, f"{sha[:10]}:{env.name}/{rel.RELEASE_FILE}")
        if earlier.release.id == release_id:  # else its trailers name a release it is not
            return current, earlier
    if wanted:
        raise ConfigError(f"release {wanted} was never in {env.name} (or is the current one)")
    raise ConfigError(f"environment {env.name} has no earlier release to roll back to")
