"""Provenance statements, DSSE envelopes and attestation manifests: the pure parts."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from mlops.core import provenance as prov
from mlops.errors import ApprovalError, MlopsError

IMAGE = "127.0.0.1:5000/mlops/train"
DIGEST = "sha256:" + "ab" * 32
COMMIT = "c0ffee" + "0" * 34


def make(image: str = IMAGE, digest: str = DIGEST, commit: str = COMMIT, **over) -> dict:
    args = {"component": "train", "version": "1.2.0", "input_hash": "ih-123",
            "build_args": {"B": "2", "A": "1"}, "source_repo": "https://git.example/ml.git",
            "source_commit": commit, "builder": "https://ci.example/runner",
            "started": "2026-01-02T03:04:05Z", "finished": "2026-01-02T03:05:00Z", **over}
    return prov.statement(image, digest, **args)


def payload(stmt: dict) -> bytes:
    return prov.serialize(stmt)


def test_pae_matches_the_dsse_spec_vector():
    assert prov.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_pae_counts_bytes_not_characters():
    assert prov.pae("tyb\u00e9", b"x") == b"DSSEv1 5 tyb\xc3\xa9 1 x"
    assert prov.pae("t", b"") == b"DSSEv1 1 t 0 "


def test_statement_follows_in_toto_v1_and_slsa_v1():
    assert make(image=IMAGE + ":1.2.0") == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": IMAGE, "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": prov.BUILD_TYPE,
                "externalParameters": {
                    "component": "train", "version": "1.2.0",
                    "build_args": {"A": "1", "B": "2"},
                    "source": {"repository": "https://git.example/ml.git", "commit": COMMIT}},
                "internalParameters": {"input_hash": "ih-123"},
                "resolvedDependencies": [{"uri": f"git+https://git.example/ml.git@{COMMIT}",
                                          "digest": {"gitCommit": COMMIT}}],
            },
            "runDetails": {"builder": {"id": "https://ci.example/runner"},
                           "metadata": {"startedOn": "2026-01-02T03:04:05Z",
                                        "finishedOn": "2026-01-02T03:05:00Z"}},
        },
    }


def test_statement_keeps_tokens_of_the_remote_url_out():
    stmt = make(source_repo="https://ci-bot:s3cret@git.example/ml.git")
    assert "s3cret" not in payload(stmt).decode()
    assert stmt["predicate"]["buildDefinition"]["externalParameters"]["source"][
        "repository"] == "https://git.example/ml.git"


def test_statement_without_a_remote_names_only_the_commit():
    definition = make(source_repo=None)["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["source"] == {"commit": COMMIT}
    assert definition["resolvedDependencies"] == [{"digest": {"gitCommit": COMMIT}}]


def test_statement_refuses_a_digest_that_is_not_sha256():
    with pytest.raises(MlopsError, match="is not a sha256:<64 hex> digest"):
        make(digest="sha256:abc")


def test_serialize_is_deterministic_and_compact():
    assert payload(make()) == payload(json.loads(payload(make())))
    assert b" " not in payload({"b": 1, "a": [1, 2]}) and payload({"b": 1, "a": 2}) == (
        b'{"a":2,"b":1}')


def test_envelope_round_trip():
    raw = prov.envelope(b'{"x":1}', "-----BEGIN SSH SIGNATURE-----\nAAA\n", "key-1")
    doc = json.loads(raw)
    assert doc["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(doc["payload"]) == b'{"x":1}'
    assert prov.parse_envelope(raw) == (
        b'{"x":1}', [("key-1", "-----BEGIN SSH SIGNATURE-----\nAAA\n")])
    assert raw == prov.envelope(b'{"x":1}', "-----BEGIN SSH SIGNATURE-----\nAAA\n", "key-1")


def env(**fields) -> bytes:
    doc = {"payloadType": prov.PAYLOAD_TYPE, "payload": "e30=",
           "signatures": [{"keyid": "", "sig": "c2ln"}], **fields}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("raw", "message"), [
    (b"x" * (prov.MAX_ENVELOPE + 1), "provenance envelope is 1048577 bytes, more than 1048576"),
    (b"{not json", "provenance envelope is not valid JSON: "),
    (b"\xff\xfe", "provenance envelope is not valid JSON: "),
    (b"[1]", "provenance envelope is not a JSON object"),
    (b'{"payloadType": 1, "payloadType": 2}', "provenance envelope is not valid JSON: "
                                              "duplicate key"),
    (b'{"payload": NaN}', "provenance envelope is not valid JSON: NaN is not JSON"),
    (env(payloadType="text/plain"),
     "provenance envelope has payloadType text/plain, not application/vnd.in-toto+json"),
    (env(payloadType=None), "provenance envelope has payloadType null, not "),
    (env(payload="not base64!"), "provenance envelope's payload is not base64"),
    (env(payload=7), "provenance envelope has no payload string"),
    (env(signatures=[]), "provenance envelope has no signatures"),
    (env(signatures={"sig": "c2ln"}), "provenance envelope has no signatures"),
    (env(signatures=["c2ln"]), "provenance envelope has a signature that is not an object"),
    (env(signatures=[{"keyid": 1, "sig": "c2ln"}]), "provenance envelope has a keyid that is "
                                                    "not a string"),
    (env(signatures=[{"sig": "/w=="}]), "provenance envelope has a sig that is not an SSH "
                                        "signature"),
])
def test_parse_envelope_refuses(raw, message):
    with pytest.raises(ApprovalError) as err:
        prov.parse_envelope(raw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_check_statement_accepts_its_own_statement():
    stmt = make()
    assert prov.check_statement(payload(stmt), IMAGE, DIGEST, COMMIT) == stmt
    assert prov.check_statement(payload(stmt), IMAGE + ":v1@" + DIGEST, DIGEST, COMMIT.upper())


def altered(**changes) -> bytes:
    stmt = make()
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = stmt
        for key in parents:
            node = node[key]
        node[last] = value
    return payload(stmt)


OTHER = "sha256:" + "cd" * 32


@pytest.mark.parametrize(("raw", "image", "digest", "commit", "message"), [
    (altered(_type="https://in-toto.io/Statement/v0.1"), IMAGE, DIGEST, COMMIT,
     "provenance statement has _type https://in-toto.io/Statement/v0.1, "
     "not https://in-toto.io/Statement/v1"),
    (altered(predicateType="https://slsa.dev/provenance/v0.2"), IMAGE, DIGEST, COMMIT,
     "provenance statement has predicateType https://slsa.dev/provenance/v0.2, "
     "not https://slsa.dev/provenance/v1"),
    (altered(subject=[]), IMAGE, DIGEST, COMMIT, "provenance statement has no subject"),
    (payload(make()), IMAGE, OTHER, COMMIT,
     f"provenance is for sha256:{'ab' * 6}..., not {OTHER}"),
    (altered(subject=["x"]), IMAGE, DIGEST, COMMIT,
     f"provenance is for no sha256 digest, not {DIGEST}"),
    (payload(make(image="127.0.0.1:5000/mlops/serve")), IMAGE, DIGEST, COMMIT,
     f"provenance subject is 127.0.0.1:5000/mlops/serve, not the image repository {IMAGE}"),
    (payload(make()), IMAGE, DIGEST, "f" * 40,
     f"provenance says source commit {COMMIT}, not {'f' * 40}"),
    (altered(predicate={}), IMAGE, DIGEST, COMMIT,
     f"provenance says source commit null, not {COMMIT}"),
    (b'"a string"', IMAGE, DIGEST, COMMIT, "provenance statement is not a JSON object"),
])
def test_check_statement_refuses(raw, image, digest, commit, message):
    with pytest.raises(ApprovalError) as err:
        prov.check_statement(raw, image, digest, commit)
    assert str(err.value) == message


def test_summary():
    assert prov.summary(make()) == {
        "builder": "https://ci.example/runner", "source_commit": COMMIT,
        "input_hash": "ih-123", "component": "train", "version": "1.2.0",
        "finished": "2026-01-02T03:05:00Z"}
    assert prov.summary({})["builder"] is None


def test_att_tag_is_cosigns():
    assert prov.att_tag(DIGEST) == f"sha256-{'ab' * 32}.att"


def test_attestation_manifest_round_trip():
    layers = [("sha256:" + "1" * 64, 10), ("sha256:" + "2" * 64, 20)]
    body, media_type = prov.attestation_manifest(layers)
    doc = json.loads(body)
    assert media_type == doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["schemaVersion"] == 2
    assert doc["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                             "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                             "size": 2}
    assert {layer["mediaType"] for layer in doc["layers"]} == {
        "application/vnd.dsse.envelope.v1+json"}
    assert prov.layer_descriptors(body) == layers
    assert prov.attestation_layers(body) == [d for d, _ in layers]
    assert prov.attestation_manifest(layers)[0] == body


def test_attestation_layers_skip_other_media_types_and_refuse_malformed_ones():
    other = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "x", "size": 1}
    assert prov.attestation_layers(json.dumps({"layers": [other]}).encode()) == []
    bad = {"mediaType": prov.ENVELOPE_MEDIA_TYPE, "digest": "sha256:12", "size": 1}
    with pytest.raises(ApprovalError, match="attestation manifest has a malformed layer"):
        prov.attestation_layers(json.dumps({"layers": [bad]}).encode())
    with pytest.raises(ApprovalError, match="attestation manifest has no layers list"):
        prov.attestation_layers(b"{}")


@pytest.mark.parametrize(("image", "name"), [
    (IMAGE, IMAGE), (IMAGE + ":1.0", IMAGE), (f"{IMAGE}@{DIGEST}", IMAGE),
    (f"{IMAGE}:1.0@{DIGEST}", IMAGE), ("localhost:5000/a", "localhost:5000/a"),
    ("registry.example/a/b:tag", "registry.example/a/b"),
])
def test_image_name_drops_tag_and_digest(image, name):
    assert prov.image_name(image) == name
