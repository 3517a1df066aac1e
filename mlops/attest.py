"""Signed build provenance in the registry: sign it, attach it beside an image, find a valid one.

An image's attestations are the layers of one OCI manifest tagged
`sha256-<hex>.att` in the image's repository (cosign's layout). Attaching
appends a layer; a rebuild of the same digest from another commit adds its own
envelope rather than replacing the first. A provenance counts only when an SSH
signature over PAE(payloadType, payload), in namespace `mlops-provenance`,
verifies for a principal the allowed-signers file lists for that key and the
trust root names as a builder, and the statement is about this image, this
digest and this source commit. Anything else is refused with one line that
says, per layer, why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from mlops.adapters import sshsig
from mlops.adapters.registry import Registry
from mlops.core import provenance as prov
from mlops.errors import ApprovalError, RegistryError
from mlops.names import split_image

ATTACH_ATTEMPTS = 4  # read-modify-write rounds against concurrent attaches
MAX_LAYERS = 32  # envelopes checked per digest; more is someone filling the tag


def sign_statement(statement: Mapping[str, Any], key_path: Path, keyid: str) -> bytes:
    """The DSSE envelope of `statement`, signed with the SSH key at `key_path`."""
    payload = prov.serialize(statement)
    signature = sshsig.sign(prov.pae(prov.PAYLOAD_TYPE, payload), key_path, prov.NAMESPACE)
    return prov.envelope(payload, signature, keyid)


def attach(client: Registry, repository: str, digest: str, envelope_bytes: bytes) -> str:
    """Add the envelope to `digest`'s attestation manifest; its (hash-verified) digest.

    The registry has no compare-and-swap, so two builds attaching at once could
    each write a manifest without the other's layer. Reading back after the
    write catches that, and the merge is tried again, bounded.
    """
    layer = (client.put_blob(repository, envelope_bytes), len(envelope_bytes))
    client.put_blob(repository, prov.EMPTY_BLOB)
    tag = prov.att_tag(digest)
    for _ in range(ATTACH_ATTEMPTS):
        current, layers = _current(client, repository, tag)
        if current and layer in layers:
            return current
        body, media_type = prov.attestation_manifest([*layers, layer])
        client.put_manifest(repository, tag, body, media_type)
    current, layers = _current(client, repository, tag)
    if current and layer in layers:
        return current
    raise RegistryError(f"registry {client.host}: {repository}:{tag} kept changing while "
                        f"attaching provenance ({ATTACH_ATTEMPTS} attempts); try again")


def find_valid(client: Registry, image: str, digest: str, source_commit: str,
               allowed_signers: Path, builders: Collection[str]) -> dict[str, Any]:
    """A summary of the first valid signed provenance of `image@digest`, or ApprovalError."""
    if not builders:
        raise ApprovalError("no builders are trusted, so no provenance can be; list the "
                            "builders' principals in the trust root")
    repository = _repository(image)
    tag = prov.att_tag(digest)
    manifest = client.manifest_digest(repository, tag)
    layers = _layers(client, repository, manifest) if manifest else []
    if not manifest or not layers:
        raise ApprovalError(f"no signed provenance for {image}@{digest} (tag {tag})")
    reasons = []
    for layer in layers[:MAX_LAYERS]:
        try:
            found = _check_layer(client, repository, layer, image, digest, source_commit,
                                 allowed_signers, builders)
        except ApprovalError as exc:
            reasons.append(f"{layer[0][7:19]}: {_shorten(str(exc))}")
            continue
        return {**found, "manifest": manifest, "layer": layer[0]}
    raise ApprovalError(f"no valid signed provenance for {image}@{digest} "
                        f"(tag {tag}): {'; '.join(reasons)}")


def _check_layer(client: Registry, repository: str, layer: tuple[str, int], image: str,
                 digest: str, source_commit: str, allowed_signers: Path,
                 builders: Collection[str]) -> dict[str, Any]:
    """The signature first, then the statement: unsigned content is not even read."""
    layer_digest, size = layer
    if size > prov.MAX_ENVELOPE:
        raise ApprovalError(f"envelope is {size} bytes, more than {prov.MAX_ENVELOPE}")
    payload, signatures = prov.parse_envelope(client.get_blob(repository, layer_digest, size))
    signer, keyid = _signer(prov.pae(prov.PAYLOAD_TYPE, payload), signatures, allowed_signers,
                            builders)
    statement = prov.check_statement(payload, image, digest, source_commit)
    return {**prov.summary(statement), "signer": signer, "keyid": keyid}


def _signer(signed: bytes, signatures: list[tuple[str, str]], allowed_signers: Path,
            builders: Collection[str]) -> tuple[str, str]:
    """(principal, keyid) of the first signature by a builder that verifies."""
    reasons = []
    for keyid, signature in signatures:
        listed = sshsig.find_principals(signature, allowed_signers)
        wanted = sshsig.candidates(listed, builders)
        for principal in wanted:
            if sshsig.verify(signed, signature, allowed_signers, principal, prov.NAMESPACE):
                return principal, keyid
        reasons.append(_why_not(listed, wanted, allowed_signers))
    raise ApprovalError(", ".join(dict.fromkeys(reasons)))


def _why_not(listed: list[str], wanted: list[str], allowed_signers: Path) -> str:
    if not listed:
        return f"signed by a key not in {allowed_signers.name}"
    if not wanted:
        return f"signed by {', '.join(listed)}, not a builder"
    return (f"the signature by {', '.join(wanted)} does not verify (payload altered, or not "
            f"signed for namespace {prov.NAMESPACE})")


def _current(client: Registry, repository: str, tag: str) -> tuple[str | None, list]:
    """The attestation manifest's digest and layers now, or (None, [])."""
    manifest = client.manifest_digest(repository, tag)
    if manifest is None:
        return None, []
    try:
        return manifest, _layers(client, repository, manifest)
    except ApprovalError as exc:
        raise RegistryError(f"registry {client.host}: {repository}:{tag} is not an "
                            f"attestation manifest mlops can add to: {exc}") from None


def _layers(client: Registry, repository: str, manifest: str) -> list[tuple[str, int]]:
    body, _ = client.get_manifest(repository, manifest)
    return prov.layer_descriptors(body)


def _repository(image: str) -> str:
    try:
        return split_image(prov.image_name(image))[1]
    except ValueError:
        raise ApprovalError(f"image {image!r} names no registry host") from None


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
