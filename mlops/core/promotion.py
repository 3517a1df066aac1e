"""The promotion core: from what runs, what enters and the evidence, to one change or a refusal.

Pure: no files, no git, no registry. Every commit that changes an
environment's release (promote, rollback, rollout start/step/complete/abort)
is decided here, by `decide`, from

- the environment's current record (`current`), and whether a hold may be cleared;
- the release that will run, where it came from (`Source`), and the gate results;
- the approval found for it (or none), and whether this transition needs one;
- the hold and the rollout state the transition sets.

It returns the new record, the image pins the overlay must carry, and the
commit message; or it raises the refusal: a hold (exit 3), a failed gate
(exit 3), a missing approval (exit 4). The approval rule lives here, once:
a transition that needs one never yields a change without it, whatever the
caller found or forgot to look for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from mlops import release as rel
from mlops import trailers
from mlops.errors import ApprovalError, GateFailed, MlopsError
from mlops.records import dataclass, field


class Action(StrEnum):
    """What a commit does to an environment; its `Mlops-Action` trailer."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ROLLOUT_START = "rollout-start"
    ROLLOUT_STEP = "rollout-step"
    ROLLOUT_COMPLETE = "rollout-complete"
    ROLLOUT_ABORT = "rollout-abort"


class SourceKind(StrEnum):
    BUILD = "build"  # a build record, into the first environment
    ENVIRONMENT = "environment"  # the environment before, in order
    ROLLBACK = "rollback"  # an earlier release of the same environment, from history


@dataclass(frozen=True)
class Source:
    """Where a release came from. Written as `build`, `rollback` or the environment's name
    (`promoted_from` in release.yaml, `Mlops-From` in commits), as it always was."""

    kind: SourceKind
    env: str | None = None

    def __str__(self) -> str:
        return self.env if self.kind is SourceKind.ENVIRONMENT and self.env else self.kind.value

    @classmethod
    def parse(cls, text: str) -> Source:
        if text in (SourceKind.BUILD.value, SourceKind.ROLLBACK.value):
            return cls(SourceKind(text))
        return cls(SourceKind.ENVIRONMENT, text)

    @classmethod
    def environment(cls, name: str) -> Source:
        return cls(SourceKind.ENVIRONMENT, name)

    @property
    def is_environment(self) -> bool:
        return self.kind is SourceKind.ENVIRONMENT


BUILD = Source(SourceKind.BUILD)
ROLLBACK = Source(SourceKind.ROLLBACK)


@dataclass(frozen=True)
class Transition:
    """One proposed change to an environment, with the evidence gathered for it."""

    action: Action
    env: str
    release: rel.Release  # what will run, pipelines recompiled
    source: Source
    gates: Sequence[Mapping[str, Any]] = ()
    approval: Mapping[str, str] | None = None  # {"approver", "commit"}, verified, for this change
    needs_approval: bool = False
    hold: Mapping[str, Any] | None = None  # the hold this change sets (rollback, abort)
    rollout: Mapping[str, Any] | None = None  # the rollout state after this change
    gated: bool = True  # False: the gates were judged when the release entered (a step)
    kept_approval: Mapping[str, str] | None = None  # an earlier commit's, the record keeps


@dataclass(frozen=True)
class Message:
    """How the commit message reads; the trailers come from the transition."""

    subject: str | None = None
    hold_note: str | None = None  # "set" | "cleared"
    previous: str | None = None
    extra: Sequence[tuple[str, str]] = ()
    body_extra: Sequence[str] = ()
    provenance: Sequence[Mapping[str, str]] | None = None


PLAIN = Message()  # the message with nothing added


@dataclass(frozen=True)
class Change:
    record: rel.EnvRecord
    pins: dict[str, tuple[str, str]]
    message: str
    approver: str | None = field(default=None)


def refuse_hold(current: rel.EnvRecord | None, env: str, clear_hold: bool,
                lift: str = "`mlops promote --clear-hold` lifts it with this promotion") -> None:
    """A rollback's hold stops every automatic promotion until one clears it on purpose.

    `lift` names the command that does, for the environment's kind (a canary
    environment takes releases only through `mlops rollout start`)."""
    if current is not None and current.hold and not clear_hold:
        reason = current.hold.get("reason", "a rollback")
        raise GateFailed(f"environment {env} is on hold ({reason}); {lift}")


def passed(result: Mapping[str, Any]) -> bool:
    """A gate result or an analysis decision passed. Anything but an explicit pass fails:
    a missing result, "inconclusive", "fail", or a value of the wrong type."""
    return result.get("result") == "pass"


def failed_gates(gates: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Every gate that did not pass."""
    return [g for g in gates if not passed(g)]


def gate_refusal(gates: Sequence[Mapping[str, Any]]) -> GateFailed | None:
    failed = failed_gates(gates)
    if not failed:
        return None
    first = failed[0]
    return GateFailed(f"{len(failed)} gate(s) failed; {first['gate']}: {first['detail']}")


def refusal(t: Transition) -> MlopsError | None:
    """Why `t` may not be committed, or None. Gates first, then the approval."""
    problem: MlopsError | None = gate_refusal(t.gates) if t.gated else None
    if problem is None and t.needs_approval and not (t.approval or {}).get("approver"):
        problem = ApprovalError(f"{t.env} needs a release manager's signed approval of "
                                f"{t.release.id}; none was given")
    return problem


def record_of(t: Transition) -> rel.EnvRecord:
    approval = t.approval or t.kept_approval
    return rel.EnvRecord(t.env, t.release, str(t.source), tuple(t.gates),
                         dict(approval) if approval else None,
                         dict(t.hold) if t.hold else None,
                         dict(t.rollout) if t.rollout else None)


def pins_of(release: rel.Release) -> dict[str, tuple[str, str]]:
    """Component -> (image, digest): the `images:` entries the overlay must carry."""
    return {name: (img.image, img.digest) for name, img in release.images.items()}


def _revokes(t: Transition) -> list[tuple[str, str]]:
    """A change that takes the environment away from a release (a rollback, an abort) says
    so in a trailer: the approvals of that release lapse there (mlops.core.revocations)."""
    gone = (t.hold or {}).get("rolled_back_from")
    return [(trailers.REVOKES, gone)] if isinstance(gone, str) and gone else []


def decide(t: Transition, how: Message = PLAIN) -> Change:
    """The change to commit for `t`, or its refusal raised."""
    problem = refusal(t)
    if problem is not None:
        raise problem
    approver = (t.approval or {}).get("approver")
    text = trailers.promotion_message(
        t.action.value, t.env, t.release, str(t.source), list(t.gates), approver=approver,
        hold=how.hold_note, previous=how.previous, subject=how.subject,
        extra=[*how.extra, *_revokes(t)], body_extra=how.body_extra, provenance=how.provenance)
    return Change(record_of(t), pins_of(t.release), text, approver)
