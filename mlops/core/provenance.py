"""Build provenance: SLSA v1 in an in-toto Statement v1, in a DSSE envelope, stored as cosign does.

What `mlops build` attests for an image: which component and version, from
which source commit, with which build args and input hash, by which builder.
The statement is signed as DSSE prescribes (over PAE(payloadType, payload),
so a signature made for one payload type never counts for another) and each
envelope is one layer of an OCI manifest tagged `sha256-<hex>.att` beside the
image: where cosign's tools look for attestations.

`BUILD_TYPE` names this format: `externalParameters` has `component`,
`version`, `build_args` and `source` {`repository`, `commit`};
`internalParameters` has `input_hash` (what mlops' cache keys on).

Pure: no I/O. Anything malformed is refused with one line (`ApprovalError`,
since what reads provenance is deciding whether to trust an image).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlops.errors import ApprovalError, MlopsError
from mlops.names import DIGEST

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://github.com/example/mlops/build/v1"  # documented in the module docstring
ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_BLOB).hexdigest()
NAMESPACE = "mlops-provenance"  # ssh-keygen -n: a provenance signature is no git signature
MAX_ENVELOPE = 1024 * 1024


def statement(image: str, digest: str, *, component: str, version: str, input_hash: str,
              build_args: Mapping[str, str], source_repo: str | None, source_commit: str,
              builder: str, started: str, finished: str) -> dict[str, Any]:
    """The in-toto statement that `builder` built `image@digest` from `source_commit`."""
    repo = _without_userinfo(source_repo) if source_repo else None
    source = {"commit": source_commit, **({"repository": repo} if repo else {})}
    dependency: dict[str, Any] = {"digest": {"gitCommit": source_commit}}
    if repo:
        dependency["uri"] = f"git+{repo}@{source_commit}"
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": image_name(image), "digest": {"sha256": _hex(digest)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"component": component, "version": version,
                                       "build_args": dict(sorted(build_args.items())),
                                       "source": source},
                "internalParameters": {"input_hash": input_hash},
                "resolvedDependencies": [dependency],
            },
            "runDetails": {"builder": {"id": builder},
                           "metadata": {"startedOn": started, "finishedOn": finished}},
        },
    }


def serialize(obj: Mapping[str, Any]) -> bytes:
    """Compact, sorted JSON: the same statement always makes the same bytes and digest."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a signature covers. Lengths count bytes."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def envelope(payload: bytes, signature: str, keyid: str) -> bytes:
    """A DSSE envelope with one signature: the armored SSH signature, base64-encoded."""
    sig = {"keyid": keyid, "sig": base64.b64encode(signature.encode()).decode()}
    return serialize({"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                      "signatures": [sig]})


def parse_envelope(raw: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    """(payload, [(keyid, signature text)]) of an in-toto DSSE envelope, or ApprovalError."""
    if len(raw) > MAX_ENVELOPE:
        raise ApprovalError(f"provenance envelope is {len(raw)} bytes, more than {MAX_ENVELOPE}")
    doc = _object(raw, "provenance envelope")
    if doc.get("payloadType") != PAYLOAD_TYPE:
        raise ApprovalError(f"provenance envelope has payloadType "
                            f"{_short(doc.get('payloadType'))}, not {PAYLOAD_TYPE}")
    payload = _unb64(doc.get("payload"), "payload")
    signatures = doc.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise ApprovalError("provenance envelope has no signatures")
    return payload, [_signature(entry) for entry in signatures]


def check_statement(payload: bytes, image: str, digest: str,
                    source_commit: str) -> dict[str, Any]:
    """The statement in `payload`, if it is SLSA provenance of this image, digest and commit."""
    doc = _object(payload, "provenance statement")
    for key, want in (("_type", STATEMENT_TYPE), ("predicateType", PREDICATE_TYPE)):
        if doc.get(key) != want:
            raise ApprovalError(f"provenance statement has {key} {_short(doc.get(key))}, "
                                f"not {want}")
    _check_subject(doc.get("subject"), image_name(image), _hex(digest))
    built_from = _dig(doc, "predicate", "buildDefinition", "externalParameters", "source",
                      "commit")
    if not isinstance(built_from, str) or built_from.lower() != source_commit.lower():
        raise ApprovalError(f"provenance says source commit {_short(built_from)}, "
                            f"not {source_commit}")
    return doc


def summary(stmt: Mapping[str, Any]) -> dict[str, Any]:
    """What a report shows of a checked statement."""
    params = _dig(stmt, "predicate", "buildDefinition")
    return {
        "builder": _dig(stmt, "predicate", "runDetails", "builder", "id"),
        "source_commit": _dig(params, "externalParameters", "source", "commit"),
        "input_hash": _dig(params, "internalParameters", "input_hash"),
        "component": _dig(params, "externalParameters", "component"),
        "version": _dig(params, "externalParameters", "version"),
        "finished": _dig(stmt, "predicate", "runDetails", "metadata", "finishedOn"),
    }


def att_tag(digest: str) -> str:
    """cosign's tag for the attestations of `digest`: `sha256-<hex>.att`."""
    return f"sha256-{_hex(digest)}.att"


def attestation_manifest(layers: list[tuple[str, int]]) -> tuple[bytes, str]:
    """An OCI manifest with the empty config and one DSSE envelope layer per (digest, size)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [{"mediaType": ENVELOPE_MEDIA_TYPE, "digest": digest, "size": size,
                    "annotations": {"predicateType": PREDICATE_TYPE}}
                   for digest, size in layers],
    }
    return serialize(manifest), MANIFEST_MEDIA_TYPE


def layer_descriptors(manifest: bytes) -> list[tuple[str, int]]:
    """(digest, size) of each DSSE envelope layer of an attestation manifest."""
    doc = _object(manifest, "attestation manifest")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ApprovalError("attestation manifest has no layers list")
    found = []
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == ENVELOPE_MEDIA_TYPE:
            digest, size = layer.get("digest"), layer.get("size")
            if not (isinstance(digest, str) and DIGEST.match(digest)
                    and type(size) is int and size >= 0):
                raise ApprovalError(f"attestation manifest has a malformed layer: "
                                    f"{_short(layer)}")
            found.append((digest, size))
    return found


def attestation_layers(manifest: bytes) -> list[str]:
    """The digests of the DSSE envelope layers, in manifest order."""
    return [digest for digest, _ in layer_descriptors(manifest)]


def image_name(image: str) -> str:
    """`host/ns/name:tag@sha256:...` -> `host/ns/name`: what a subject is named."""
    name = image.split("@", 1)[0]
    last = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > last else name


# -- helpers --------------------------------------------------------------

def _check_subject(subjects: Any, name: str, hex_digest: str) -> None:
    if not isinstance(subjects, list) or not subjects:
        raise ApprovalError("provenance statement has no subject")
    entries = [s for s in subjects if isinstance(s, dict)]
    matching = [s for s in entries if _dig(s, "digest", "sha256") == hex_digest]
    if not matching:
        named = ", ".join(f"sha256:{str(_dig(s, 'digest', 'sha256'))[:12]}..." for s in entries)
        raise ApprovalError(f"provenance is for {named or 'no sha256 digest'}, "
                            f"not sha256:{hex_digest}")
    if not any(s.get("name") == name for s in matching):
        raise ApprovalError(f"provenance subject is {_short(matching[0].get('name'))}, "
                            f"not the image repository {name}")


def _object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object, refusing duplicate keys and NaN: two parsers must not read it two ways."""
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                         parse_constant=lambda name: _refuse(f"{name} is not JSON"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApprovalError(f"{what} is not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(doc, dict):
        raise ApprovalError(f"{what} is not a JSON object")
    return doc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    return doc if len(doc) == len(pairs) else _refuse("duplicate key")


def _refuse(why: str) -> Any:
    raise ValueError(why)


def _signature(entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise ApprovalError("provenance envelope has a signature that is not an object")
    keyid = entry.get("keyid", "")
    if not isinstance(keyid, str):
        raise ApprovalError("provenance envelope has a keyid that is not a string")
    sig = _unb64(entry.get("sig"), "sig")
    try:
        return keyid, sig.decode("ascii")
    except UnicodeDecodeError:
        raise ApprovalError("provenance envelope has a sig that is not an SSH signature") from None


def _unb64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise ApprovalError(f"provenance envelope has no {field} string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApprovalError(f"provenance envelope's {field} is not base64") from None


def _hex(digest: str) -> str:
    if not DIGEST.match(digest):
        raise MlopsError(f"{digest!r} is not a sha256:<64 hex> digest")
    return digest.split(":", 1)[1]


def _dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]..., or None when a level is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def _without_userinfo(url: str) -> str:
    """A remote URL without `user:token@`: provenance is public, tokens are not."""
    parts = urlsplit(url)
    if "@" not in parts.netloc or not parts.scheme:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
