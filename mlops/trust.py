"""Who is trusted to approve releases and sign builds: the trust root, and how it may change.

The trust root is three things: the allowed-signers text (git's
`gpg.ssh.allowedSignersFile` format), the release managers and the builders.
Read naively from the branch it protects, anyone who can push could add their
own key and principal, then approve anything. So, read from the branch, it is
settled over the branch's history: the first commit that sets any of it is
trusted on first use, and every later change counts only if the commit that
makes it is signed by a release manager of the state before it. An unsigned
change that is still in force refuses every approval, naming the commit.

A root pinned outside the branch (`$MLOPS_TRUST_ROOT`, `--trust-root FILE`)
replaces all of that; the branch's files are then ignored.

Pure: the history and the signature checks come in as data and a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlops.config import TRUST_ROOT_ENV
from mlops.errors import ApprovalError


def signer_lines(text: str) -> tuple[str, ...]:
    """The key lines of an allowed-signers text, whitespace-normalised, comments dropped."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


@dataclass(frozen=True)
class TrustState:
    """The trust root as one commit's tree (or a pinned file) states it."""

    signers: tuple[str, ...] = ()  # key lines, see `signer_lines`
    release_managers: tuple[str, ...] = ()
    builders: tuple[str, ...] = ()

    @classmethod
    def of(cls, signers_text: str | None, release_managers: Sequence[str],
           builders: Sequence[str]) -> TrustState:
        return cls(signer_lines(signers_text or ""), tuple(sorted(set(release_managers))),
                   tuple(sorted(set(builders))))

    def empty(self) -> bool:
        return not (self.signers or self.release_managers or self.builders)

    def signers_text(self) -> str:
        return "".join(f"{line}\n" for line in self.signers)


@dataclass(frozen=True)
class TrustRoot:
    state: TrustState
    origin: str  # for messages: where the root comes from, e.g. "pinned in FILE"


@dataclass(frozen=True)
class Change:
    """A commit (oldest first) that touched the files the trust root is read from."""

    sha: str
    state: TrustState | None  # None: the trust root cannot be read at this commit


# (commit, the state trusted before it) -> the principal whose verified signature it
# carries, or None; and a one-word reason when None.
SignerOf = Callable[[str, TrustState], tuple[str | None, str]]


@dataclass
class _Walk:
    trusted: TrustState | None = None
    since: str | None = None
    offending: tuple[str, str] | None = None  # (commit, why) of a change not yet trusted


def settle(changes: Sequence[Change], signer_of: SignerOf) -> TrustRoot:
    """The trust root in force at the newest change, or ApprovalError naming the bad commit."""
    walk = _Walk()
    for change in changes:
        _step(walk, change, signer_of)
    if walk.offending is not None:
        sha, why = walk.offending
        raise ApprovalError(
            f"the trust root (allowed signers, release managers, builders) was changed by "
            f"commit {sha[:10]}, {why}: a change of who is trusted counts only when signed by "
            f"a release manager trusted before it; revert it, re-make it as a signed commit, "
            f"or pin the trust root with ${TRUST_ROOT_ENV}"
        )
    if walk.trusted is None:
        return TrustRoot(TrustState(), "the branch (no allowed signers or release managers yet)")
    return TrustRoot(walk.trusted, f"the branch, trusted since commit {walk.since}")


def _step(walk: _Walk, change: Change, signer_of: SignerOf) -> None:
    if walk.trusted is None:  # trust on first use: the first commit that sets any of it
        if change.state is not None and not change.state.empty():
            walk.trusted, walk.since = change.state, change.sha[:10]
        return
    if change.state == walk.trusted:  # back to what is trusted (e.g. a revert)
        walk.offending = None
        return
    principal, why = signer_of(change.sha, walk.trusted)
    if change.state is not None and principal in walk.trusted.release_managers:
        walk.trusted, walk.since, walk.offending = change.state, change.sha[:10], None
    elif walk.offending is None:
        walk.offending = (change.sha, _unsigned_reason(principal, why, change.state))


def _unsigned_reason(principal: str | None, why: str, state: TrustState | None) -> str:
    if state is None:
        return "which leaves mlops.yaml or the allowed-signers file unreadable"
    if principal is None:
        return f"which is not signed by a trusted key ({why})"
    return f"which {principal} signed, who is not a release manager"
