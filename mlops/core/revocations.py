"""Rolled-back releases: an approval given before a release was rolled back no longer counts.

A rollback (`mlops rollback`) or an aborted canary (`mlops rollout abort`) takes
an environment away from a release because something was wrong with it. The
approvals that let it in were given before anyone knew, so from that commit on
they approve nothing there: the release can come back, by any path (`promote
--clear-hold`, `rollout start --clear-hold` and its final step, a second
`rollback`, the same content fed again through dev and staging), only on an
approval given after it was rolled back.

The rollback's hold in `release.yaml` cannot carry this: the record is a file
anyone who can push may edit, and the next promotion rewrites it. The commits
can: every rollback and abort commit names the release it revokes
(`Mlops-Revokes`; older ones only in their subject), and an approval counts only
if it descends from every such commit for its release and environment. Reading
every parent, not the first-parent line, so a merge cannot step around one;
a forged revocation only refuses more.

Pure: the commits come in as data, the ancestry as a callback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from mlops.records import dataclass

# The subjects rollback and abort commits had before `Mlops-Revokes` (trailers.py).
_OLD_SUBJECTS = (
    re.compile(r"rollback\([^)]*\): release \S+ \(was (\S+)\)"),
    re.compile(r"canary\([^)]*\): abort (\S+), back to release \S+"),
)
_REVOKING_ACTIONS = ("rollback", "rollout-abort")


@dataclass(frozen=True)
class Revocation:
    sha: str  # the rollback or abort commit
    release_id: str  # the release it took the environment away from


def revoked_by(action: str | None, subject: str, revokes: str | None) -> str | None:
    """The release a commit revokes (given its `Mlops-Action`, subject and `Mlops-Revokes`),
    or None when it revokes nothing."""
    if revokes:
        return revokes
    if action not in _REVOKING_ACTIONS:
        return None
    for pattern in _OLD_SUBJECTS:
        found = pattern.fullmatch(subject)
        if found and found.group(1) != "none":
            return found.group(1)
    return None


# (older, newer) -> whether `older` is `newer` or one of its ancestors.
IsAncestor = Callable[[str, str], bool]


def standing_revocation(approval_sha: str, release_id: str, revocations: Iterable[Revocation],
                        is_ancestor: IsAncestor) -> Revocation | None:
    """The first revocation of `release_id` the approval commit does not descend from (so
    the approval predates it, or was given beside it), or None when the approval stands."""
    for found in revocations:
        if found.release_id == release_id and not is_ancestor(found.sha, approval_sha):
            return found
    return None


def refusal(found: Revocation, env: str) -> str:
    return (f"given before release {found.release_id} was rolled back in {env} (commit "
            f"{found.sha[:10]}); a rolled-back release takes only an approval given after "
            "that (approve again)")
