"""An environment's history, from the commits that changed its release record.

Promotions, rollbacks and canary steps all leave a commit with trailers
(`mlops.trailers`); soak time, rollback targets and compare-and-swap checks
read them back here.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    rolled_back: set[str] = set()
    for commit in ws.log([EnvDir(ws.root, env).record_display]):
        if commit.trailer(trailers.ENVIRONMENT) != env:
            continue
        release_id = commit.trailer(trailers.RELEASE)
        if release_id and not (skip_rolled_back and release_id in rolled_back):
            yield commit.sha, release_id
        gone = revocations.revoked_by(commit.trailer(trailers.ACTION), commit.subject,
                                      commit.trailer(trailers.REVOKES))
        if gone:
            rolled_back.add(gone)


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
