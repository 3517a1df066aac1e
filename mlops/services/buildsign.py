"""Signed provenance for what `mlops build` pushed: one in-toto statement per image.

With a signing key (`--sign-key FILE`, else `$MLOPS_SIGNING_KEY`) and the
builder's principal (`--builder`, else `$MLOPS_BUILDER`), every pushed or
reused image gets an SSH-signed SLSA provenance statement for this source
commit, attached in the registry as cosign lays attestations out
(`sha256-<hex>.att`; `mlops.attest`). A reused image gets one too: the
statement says "commit C's inputs hash to H, and H's image is this digest",
which holds for every commit with the same inputs, and promotion asks for a
statement naming the release's own source commit.

A failed attestation fails that component (exit 1): the image is in the
registry, but a promotion that requires provenance would refuse it; running
the build again reuses the image and attests it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from mlops import attest
from mlops.adapters import sshsig
from mlops.core import provenance
from mlops.errors import MlopsError, UsageError
from mlops.names import split_image
from mlops.plan import PlannedComponent
from mlops.records import dataclass, replace
from mlops.services.buildrun import Outcome
from mlops.services.registries import RegistryAccess

KEY_ENV = "MLOPS_SIGNING_KEY"
BUILDER_ENV = "MLOPS_BUILDER"


@dataclass(frozen=True)
class Signing:
    key: Path
    builder: str  # the principal the allowed-signers file lists for the key
    source_repo: str | None
    source_commit: str


def signing_from(key: Path | None, builder: str | None, environ: Mapping[str, str],
                 push: bool) -> tuple[Path, str] | None:
    """(key, builder) when the build should sign, None when it should not."""
    key_named = "--sign-key" if key else f"${KEY_ENV}"  # what the user gave, in errors
    key = key or (Path(environ[KEY_ENV]) if environ.get(KEY_ENV) else None)
    named = "--builder" if builder else f"${BUILDER_ENV}"  # what the user gave, in errors
    builder = builder or environ.get(BUILDER_ENV) or None
    if key is None:
        if builder:
            raise UsageError(f"{named} needs a signing key (--sign-key FILE or ${KEY_ENV})")
        return None
    if not builder:
        raise UsageError(f"signing provenance needs the builder's principal, as the "
                         f"allowed-signers file lists it (--builder or ${BUILDER_ENV})")
    if not push:
        raise UsageError("provenance is attached to pushed images; drop --no-push or the key")
    # now, not when the first image is pushed: a key that cannot sign would fail every one
    sshsig.check_key(key, key_named)
    return key, builder


def check_attestable(plan: Sequence[PlannedComponent], head: str | None) -> None:
    """A statement names a commit: refuse, before building, what no commit holds."""
    dirty = sorted(p.name for p in plan if p.dirty)
    if head is None or dirty:
        what = f"component {dirty[0]} has uncommitted changes" if dirty else "nothing is committed"
        raise UsageError(f"{what}; signed provenance names the commit an image was built "
                         "from: commit first, or build without a signing key")


def attest_outcomes(signing: Signing, access: RegistryAccess, outcomes: Sequence[Outcome],
                    jobs: int) -> list[Outcome]:
    """Each pushed or reused outcome with its attestation; a failure fails the component."""
    def one(outcome: Outcome) -> Outcome:
        if outcome.status == "failed" or not outcome.digest:
            return outcome
        try:
            return replace(outcome, provenance=_attest(signing, access, outcome))
        except MlopsError as exc:
            return replace(outcome, status="failed",
                           error=f"pushed, but attaching its provenance failed: {exc}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, outcomes))


def _attest(signing: Signing, access: RegistryAccess, outcome: Outcome) -> dict[str, str]:
    item = outcome.item
    assert outcome.digest is not None
    now = _now()
    statement = provenance.statement(
        item.image, outcome.digest, component=item.name, version=item.spec.version,
        input_hash=item.input_hash, build_args=dict(item.build_args),
        source_repo=signing.source_repo, source_commit=signing.source_commit,
        builder=signing.builder, started=now, finished=now)
    envelope = attest.sign_statement(statement, signing.key, signing.builder)
    manifest = attest.attach(access.client, split_image(item.image)[1], outcome.digest,
                             envelope)
    return {"builder": signing.builder, "tag": provenance.att_tag(outcome.digest),
            "attestation": manifest}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
