"""Who is trusted to approve releases and sign builds: the trust root, and how it may change.

The trust root is four things: the allowed-signers text (git's
`gpg.ssh.allowedSignersFile` format), the release managers, the builders and
the environments whose promotions need an approval.
Read naively from the branch it protects, anyone who can push could add their
own key and principal, then approve anything. So, read from the branch, it is
settled over the branch's history: the first commit that sets any of it is
trusted on first use, and every later change counts only if the commit that
makes it is signed by a release manager of the state before it (only gating one
more environment needs no signature: it tightens). An unsigned change that is
still in force refuses every approval, naming the commit.

A root pinned outside the branch (`$MLOPS_TRUST_ROOT`, `--trust-root FILE`)
replaces all of that; the branch's files are then ignored.

Pure: the history and the signature checks come in as data and a callback, and the
time at which the allowed signers are judged (`in_force`) as a number.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from mlops.config import TRUST_ROOT_ENV
from mlops.errors import ApprovalError
from mlops.records import dataclass


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
    gated: tuple[str, ...] = ()  # environments with `approval: true`

    @classmethod
    def of(cls, signers_text: str | None, release_managers: Sequence[str],
           builders: Sequence[str], gated: Sequence[str] = ()) -> TrustState:
        return cls(signer_lines(signers_text or ""), tuple(sorted(set(release_managers))),
                   tuple(sorted(set(builders))), tuple(sorted(set(gated))))

    def empty(self) -> bool:
        """Nobody trusted yet (gated environments alone are not trusted on first use)."""
        return not (self.signers or self.release_managers or self.builders)

    def tightens(self, before: TrustState) -> bool:
        """The same people, and approval needed in more environments."""
        return (self.signers, self.release_managers, self.builders) == (
            before.signers, before.release_managers, before.builders) and set(
            self.gated) >= set(before.gated)

    def signers_at(self, now: float, commits: bool, local: tzinfo | None = None) -> InForce:
        """The allowed signers to hand git or ssh-keygen at `now`, see `in_force`."""
        return in_force(self.signers, now, commits, local)


# -- the allowed signers in force at the time of a check ---------------------
#
# `git verify-commit` passes ssh-keygen the commit's own committer date as the time
# to judge a key at (git's gpg-interface.c, verify_ssh_signed_buffer: "-Overify-time="
# from the payload's committer/tagger timestamp), and whoever signs writes that date.
# So a line's `valid-after`/`valid-before` are judged here, at the time of the check,
# and never reach git: a key retired in the past could otherwise sign a backdated
# commit. ssh-keygen -Y verify (provenance) uses the current time anyway; windows are
# judged here for both, so the two checks agree on who is trusted now.


@dataclass(frozen=True)
class InForce:
    """Allowed-signers lines as they stand at one moment."""

    lines: tuple[str, ...]  # to write: in force now, without valid-after/valid-before
    left_out: tuple[str, ...] = ()  # one reason per line not in force, naming its principals
    commits: bool = False  # judged for `git verify-commit` (no cert-authority lines)

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)

    def note(self) -> str:
        """For a refusal: the lines left out and why, or ""."""
        if not self.left_out:
            return ""
        return f" (not trusted now: {'; '.join(self.left_out)})"


def in_force(lines: Sequence[str], now: float, commits: bool,
             local: tzinfo | None = None) -> InForce:
    """`lines` (see `signer_lines`) judged at `now` (seconds since the epoch).

    A line outside its valid-after/valid-before window is left out, and one inside
    it is kept without them; a time that does not parse leaves its line out (fail
    closed). Other options are kept. With `commits`, for `git verify-commit`, a
    `cert-authority` line is left out too: git would judge the certificate's own
    validity at the commit's date, and no option of git's changes that. Times
    without `Z` are local (`local`; None: this system's time zone), as OpenSSH has it.
    """
    kept: list[str] = []
    left_out: list[str] = []
    for line in lines:
        judged, why = _judge(line, now, commits, local)
        if judged is not None:
            kept.append(judged)
        else:
            left_out.append(f"{line.split(' ', 1)[0]}: {why}")
    return InForce(tuple(kept), tuple(left_out), commits)


# A key type begins the key; anything else after the principals is the options field.
_KEY_TYPE = re.compile(r"(ssh|ecdsa|sk)-[A-Za-z0-9@.+-]+")
_WINDOW = ("valid-after", "valid-before")


def _judge(line: str, now: float, commits: bool,
           local: tzinfo | None) -> tuple[str | None, str]:
    """(the line to write, or None and why it is left out)."""
    principals, rest = _field(line)
    if _KEY_TYPE.fullmatch(rest.split(" ", 1)[0]):
        return _checked(line, commits)
    options, key = _field(rest)
    items = _option_items(options)
    if items is None or not key:
        return None, "its options do not parse"
    names = [item.split("=", 1)[0].lower() for item in items]
    if commits and "cert-authority" in names:
        return None, ("a cert-authority line, not used for approvals or trust changes "
                      "(git would check a certificate at the commit's own date)")
    why = _outside_window(items, names, now, local)
    if why is not None:
        return None, why
    others = [item for item, name in zip(items, names, strict=True) if name not in _WINDOW]
    return _checked(" ".join([principals, *([",".join(others)] if others else []), key]),
                    commits)


def _checked(line: str, commits: bool) -> tuple[str | None, str]:
    """`line`, unless an option that must not reach git is still in it (a line this
    module misread): fail closed rather than let the commit's date decide."""
    lowered = line.lower()
    if any(f"{name}=" in lowered for name in _WINDOW) or (
            commits and "cert-authority" in lowered):
        return None, "its options do not parse"
    return line, ""


def _field(text: str) -> tuple[str, str]:
    """(the first field, the rest): a field ends at a space that is not inside double
    quotes, as OpenSSH's sshkey_advance_past_options has it."""
    quoted = False
    index = 0
    while index < len(text) and (quoted or text[index] != " "):
        if text.startswith('\\"', index):
            index += 1
        elif text[index] == '"':
            quoted = not quoted
        index += 1
    return text[:index], text[index + 1:]


def _option_items(options: str) -> list[str] | None:
    """The comma-separated options, commas inside quotes kept; None when a quote is open."""
    items = [""]
    quoted = False
    for index, char in enumerate(options):
        if char == '"' and options[index - 1:index] != "\\":
            quoted = not quoted
        if char == "," and not quoted:
            items.append("")
        else:
            items[-1] += char
    return None if quoted or "" in items else items


def _outside_window(items: list[str], names: list[str], now: float,
                    local: tzinfo | None) -> str | None:
    """Why `now` is outside the window the items set, or None when it is inside."""
    bounds: dict[str, float] = {}
    for item, name in zip(items, names, strict=True):
        if name not in _WINDOW:
            continue
        value = item.split("=", 1)[1] if "=" in item else ""
        instant = _instant(_unquoted(value), local)
        if instant is None or name in bounds:
            return f"its {name} time {value} does not parse (or is given twice)"
        bounds[name] = instant
    after, before = bounds.get("valid-after"), bounds.get("valid-before")
    if after is not None and before is not None and before <= after:
        return "its valid-before is not after its valid-after"
    if after is not None and now < after:
        return "its valid-after has not come yet"
    if before is not None and now > before:
        return "its valid-before has passed"
    return None


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


_TIME = re.compile(r"([0-9]{8}|[0-9]{12}|[0-9]{14})([Zz]?)")  # ASCII digits, as OpenSSH


def _instant(text: str, local: tzinfo | None) -> float | None:
    """Seconds since the epoch of an OpenSSH time (YYYYMMDD[HHMM[SS]], `Z` for UTC, else
    local time), or None when it is not one."""
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    digits, utc = match.groups()
    full = digits.ljust(14, "0")  # a date alone is its midnight, as in OpenSSH
    try:
        when = datetime(int(full[:4]), int(full[4:6]), int(full[6:8]), int(full[8:10]),
                        int(full[10:12]), int(full[12:]))
    except ValueError:  # month 13, 25 o'clock, ...
        return None
    zone = UTC if utc else local
    instant = when.replace(tzinfo=zone).timestamp() if zone else when.timestamp()
    return instant if instant > 0 else None  # OpenSSH refuses the epoch and before


@dataclass(frozen=True)
class TrustRoot:
    state: TrustState
    origin: str  # for messages: where the root comes from, e.g. "pinned in FILE"


@dataclass(frozen=True)
class Change:
    """A commit (parents before children) that touched the files the trust root is read from,
    or a merge; `parents`: the changes it descends from directly (None: the one before it)."""

    sha: str
    state: TrustState | None  # None: the trust root cannot be read at this commit
    parents: tuple[str, ...] | None = None


# (commit, the state trusted before it) -> the principal whose verified signature it
# carries, or None; and a one-word reason when None.
SignerOf = Callable[[str, TrustState], tuple[str | None, str]]


@dataclass(frozen=True)
class _Trusted:
    since: str  # the commit that made `state` trusted
    state: TrustState


@dataclass(frozen=True)
class _Node:
    """What is trusted at a commit: one state, or (when histories that trust different
    states meet, unsigned) several, each of which must agree to a change."""

    trusted: tuple[_Trusted, ...] = ()
    offending: tuple[str, str] | None = None  # (commit, why) of a change not yet trusted


def settle(changes: Sequence[Change], signer_of: SignerOf) -> TrustRoot:
    """The trust root in force at the newest change, or ApprovalError naming the bad commit.

    Settled over every parent of a merge, not only the first: what a merge's tree
    states must agree with what each parent's history trusts, so a first parent that
    is a new root (trusted on first use) or an older state overrides nothing.
    """
    walk = _Dag()
    tip = _Node()
    for index, change in enumerate(changes):
        parents = change.parents if change.parents is not None else (
            (changes[index - 1].sha,) if index else ())
        tip = walk.add(change, parents, signer_of)
    return _root(tip)


class _Dag:
    """The nodes settled so far, with each one's ancestors as a bit set over their order."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.order: dict[str, int] = {}
        self.ancestors: dict[str, int] = {}

    def add(self, change: Change, parents: Sequence[str], signer_of: SignerOf) -> _Node:
        known = [p for p in dict.fromkeys(parents) if p in self.nodes]
        self.ancestors[change.sha] = functools.reduce(
            operator.or_, (self.ancestors[p] | 1 << self.order[p] for p in known), 0)
        self.order[change.sha] = len(self.order)
        before = self._newest([t for p in known for t in self.nodes[p].trusted])
        offending = next((n.offending for p in known if (n := self.nodes[p]).offending), None)
        node = _step(change, before, offending, signer_of)
        self.nodes[change.sha] = node
        return node

    def _newest(self, trusted: list[_Trusted]) -> tuple[_Trusted, ...]:
        """The parents' trusted states, less those an other one superseded (its ancestors)."""
        unique = {t.since: t for t in trusted}
        return tuple(t for t in unique.values()
                     if not any(self._ancestor_of(t.since, u) for u in unique))

    def _ancestor_of(self, sha: str, other: str) -> bool:
        return sha != other and bool(self.ancestors[other] >> self.order[sha] & 1)


def _step(change: Change, before: tuple[_Trusted, ...], offending: tuple[str, str] | None,
          signer_of: SignerOf) -> _Node:
    state = change.state
    if not before:  # trust on first use: the first commit that sets any of it
        if state is not None and not state.empty():
            return _Node((_Trusted(change.sha, state),))
        return _Node()
    if state is not None and all(t.state == state for t in before):  # e.g. a revert
        return _Node(before if len(before) == 1 else (_Trusted(change.sha, state),))
    why = _refusal(change.sha, state, before, signer_of)
    if why is None:
        return _Node((_Trusted(change.sha, state),)) if state is not None else _Node(before)
    return _Node(before, offending or (change.sha, why))


def _refusal(sha: str, state: TrustState | None, before: tuple[_Trusted, ...],
             signer_of: SignerOf) -> str | None:
    """Why `sha` may not change what is trusted, or None when each trusted state agrees."""
    if state is None:
        return "which leaves mlops.yaml or the allowed-signers file unreadable"
    for trusted in before:
        if state == trusted.state or state.tightens(trusted.state):
            continue
        principal, why = signer_of(sha, trusted.state)
        if principal not in trusted.state.release_managers:
            return _unsigned_reason(principal, why, before)
    return None


def _unsigned_reason(principal: str | None, why: str, before: tuple[_Trusted, ...]) -> str:
    if len(before) > 1:
        since = " and ".join(t.since[:10] for t in before)
        return (f"which joins histories trusting different states (since commits {since}) "
                f"without the signature of a release manager of each")
    if principal is None:
        return f"which is not signed by a trusted key ({why})"
    return f"which {principal} signed, who is not a release manager"


def _root(tip: _Node) -> TrustRoot:
    if tip.offending is not None:
        sha, why = tip.offending
        raise ApprovalError(
            f"the trust root (allowed signers, release managers, builders) was changed by "
            f"commit {sha[:10]}, {why}: a change of who is trusted (or that drops an approval) "
            f"counts only when signed by a release manager trusted before it; revert it, "
            f"re-make it as a signed commit, or pin the trust root with ${TRUST_ROOT_ENV}"
        )
    if not tip.trusted:
        return TrustRoot(TrustState(), "the branch (no allowed signers or release managers yet)")
    return TrustRoot(tip.trusted[0].state, f"the branch, trusted since commit "
                                            f"{tip.trusted[0].since[:10]}")
