"""Rolled-back releases: an approval given before a release was rolled back no longer counts.

A rollback (`mlops rollback`) or an aborted canary (`mlops rollout abort`) takes
an environment away from a release because something was wrong with it. The
approvals that let it in were given before anyone knew, so from that commit on
they approve nothing there: the release can come back, by any path (`promote
--clear-hold`, `rollout start --clear-hold` and its final step, a second
`rollback`, the same content fed again through dev and staging), only on an
approval given after it was rolled back.

The hold in `release.yaml` at the branch head cannot carry this: anyone who can
push may edit it away, and the next promotion rewrites it. The history of that
record can: a revocation is a commit that changed the record and left it holding
`rolled_back_from: R`, as every rollback and abort writes it (their commits also
say `Mlops-Revokes: R`, for people; a trailer is free text any commit can carry,
so it decides nothing: an empty commit naming one would block every rollback).
An approval of R counts only if it descends from every revocation of R in its
environment, on any parent, so a merge cannot step around one.

Pure: the records' holds come in as data, the ancestry as a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mlops.records import dataclass


@dataclass(frozen=True)
class Revocation:
    sha: str  # the rollback or abort commit
    release_id: str  # the release it took the environment away from


def from_holds(holds: Iterable[tuple[str, Mapping[str, Any] | None]]) -> list[Revocation]:
    """(commit, the record's hold at that commit) of each commit that changed the record ->
    the revocations among them, in the same order."""
    return [Revocation(sha, hold["rolled_back_from"]) for sha, hold in holds
            if isinstance(hold, Mapping) and isinstance(hold.get("rolled_back_from"), str)
            and hold["rolled_back_from"]]


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


def rolled_back_since(entered_sha: str, release_id: str, revocations: Iterable[Revocation],
                      is_ancestor: IsAncestor) -> bool:
    """Whether the release that entered at commit `entered_sha` was rolled back after that."""
    return any(found.release_id == release_id and found.sha != entered_sha
               and is_ancestor(entered_sha, found.sha) for found in revocations)


def refusal(found: Revocation, env: str) -> str:
    return (f"given before release {found.release_id} was rolled back in {env} (commit "
            f"{found.sha[:10]}); a rolled-back release takes only an approval given after "
            "that (approve again)")
