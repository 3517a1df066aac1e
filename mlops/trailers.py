"""Commit messages for promotions, rollbacks and approvals, and reading them back.

The git history is the audit log: every environment change is one commit
whose trailers carry the release id, digests, pipelines, gate results and the
approver, so `mlops history` needs nothing but `git log`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `mlops history` reads trailers without PyYAML
    from mlops.release import Release

RELEASE = "Mlops-Release"
ENVIRONMENT = "Mlops-Environment"
FROM = "Mlops-From"
SOURCE_COMMIT = "Mlops-Source-Commit"
DIGEST = "Mlops-Digest"
PIPELINE = "Mlops-Pipeline"
GATE = "Mlops-Gate"
APPROVER = "Mlops-Approver"
APPROVE = "Mlops-Approve"
APPROVE_DIGEST = "Mlops-Approve-Digest"  # the approved release's full content digest
HOLD = "Mlops-Hold"
ACTION = "Mlops-Action"
CANARY = "Mlops-Canary"
BASELINE = "Mlops-Baseline"
ANALYSIS = "Mlops-Analysis"
CHECK = "Mlops-Check"
NOTE = "Mlops-Note"  # why an action differs from the usual, e.g. a first release at 100%
REVOKES = "Mlops-Revokes"  # the release a rollback or abort took away: its approvals lapse
PROVENANCE = "Mlops-Provenance"  # component=builder, one per image whose provenance verified


def promotion_message(
    action: str,
    env: str,
    release: Release,
    source: str,
    gates: Sequence[Mapping[str, Any]],
    approver: str | None = None,
    hold: str | None = None,
    previous: str | None = None,
    subject: str | None = None,
    extra: Sequence[tuple[str, str]] = (),
    body_extra: Sequence[str] = (),
    provenance: Sequence[Mapping[str, str]] | None = None,
) -> str:
    """`promote(staging): release r-… from dev` (or rollback/canary), body, trailers."""
    if subject is None and action == "rollback":
        subject = f"rollback({env}): release {release.id} (was {previous or 'none'})"
    elif subject is None:
        subject = f"{action}({env}): release {release.id} from {source}"
    body = "\n".join([_body(release, gates), *body_extra])
    trailers = [
        (ACTION, action),
        (RELEASE, release.id),
        (ENVIRONMENT, env),
        (FROM, source),
        (SOURCE_COMMIT, release.source_commit or "unknown"),
        *[(DIGEST, f"{n}={img.digest}") for n, img in sorted(release.images.items())],
        *[(PIPELINE, f"{n}={v}") for n, v in sorted(release.pipelines.items())],
        *[(GATE, f"{g['gate']}={g['result']}") for g in gates],
    ]
    trailers += [(PROVENANCE, f"{p['component']}={p['builder']}") for p in provenance or ()]
    if approver:
        trailers.append((APPROVER, approver))
    if hold:
        trailers.append((HOLD, hold))
    trailers += extra
    return f"{subject}\n\n{body}\n\n" + "\n".join(f"{k}: {one_line(v)}" for k, v in trailers) \
        + "\n"


def one_line(value: str) -> str:
    """A trailer's value on one line: a line break in one (a PromQL query written as a YAML
    block) ended git's trailer block there, and every trailer after it, the action and the
    environment included, was lost to `mlops history` and to whatever reads them."""
    if not value.isprintable():  # else no character changes: one C call, not one per character
        value = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(value.split())


def _body(release: Release, gates: Sequence[Mapping[str, Any]]) -> str:
    width = max((len(n) for n in release.images), default=0)
    lines = ["Images:"]
    lines += [f"  {n:<{width}}  {img.ref}" for n, img in sorted(release.images.items())]
    if release.pipelines:
        lines.append("Pipelines: " + ", ".join(sorted(release.pipelines.values())))
    if release.metrics:
        lines.append("Metrics: " + ", ".join(
            f"{k}={v:.6g}" for k, v in sorted(release.metrics.items())))
    if gates:
        lines.append("Gates:")
        lines += [f"  {g['result']:<4}  {g['gate']}: {g['detail']}" for g in gates]
    return "\n".join(lines)


def approval_message(env: str, release_id: str, approver: str, digest: str | None = None) -> str:
    """What `mlops approve` commits, and the only message an approval may have.

    `digest` binds it to the release's content (`Release.digest`); without it
    this is the message of approvals written before, which no longer count."""
    bound = f"{APPROVE_DIGEST}: {digest}\n" if digest is not None else ""
    return (
        f"approve({env}): release {release_id}\n\n"
        f"Release manager {approver} approves release {release_id} for {env}.\n\n"
        f"{ACTION}: approve\n{APPROVE}: {release_id}\n{bound}{ENVIRONMENT}: {env}\n"
        f"{APPROVER}: {approver}\n"
    )


def pairs(values: Sequence[str]) -> dict[str, str]:
    """`["a=1", "b=2"]` -> `{"a": "1", "b": "2"}`."""
    out = {}
    for value in values:
        key, _, rest = value.partition("=")
        out[key.strip()] = rest.strip()
    return out
