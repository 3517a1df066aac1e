"""Signed provenance against the real registry and the real ssh-keygen."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops import attest
from mlops.adapters import sshsig
from mlops.adapters.registry import Registry, RetryPolicy
from mlops.core import provenance as prov
from mlops.errors import ApprovalError, ConfigError, RegistryError
from tests.support.services import require

FAST = RetryPolicy(attempts=3, initial=0.01, max_wait=0.05, read_timeout=10)
COMMIT = "1" * 40
BUILDER = "ci@example.test"
MANAGER = "rm@example.test"


def keygen(directory: Path, name: str, passphrase: str = "") -> tuple[Path, str]:
    """A fresh ed25519 key: (private key path, `type base64` public key)."""
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name,
                    "-f", str(path)], check=True)
    return path, " ".join(path.with_suffix(".pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen not installed")
    home = tmp_path_factory.mktemp("keys")
    builder, builder_pub = keygen(home, "builder")
    manager, manager_pub = keygen(home, "manager")
    stranger, _ = keygen(home, "stranger")
    signers = home / "allowed_signers"
    signers.write_text(f'{BUILDER} namespaces="{prov.NAMESPACE}" {builder_pub}\n'
                       f"{MANAGER} {manager_pub}\n")
    return {"builder": builder, "manager": manager, "stranger": stranger,
            "signers": signers, "home": home}


@pytest.fixture
def image(registry):
    """An image manifest (empty config, no layers) in a repository of this test's own."""
    server, namespace = registry
    client = Registry(server.host, policy=FAST)
    repository = namespace.split("/", 1)[1] + "/train"
    client.put_blob(repository, prov.EMPTY_BLOB)
    body = prov.serialize({"schemaVersion": 2, "mediaType": prov.MANIFEST_MEDIA_TYPE,
                           "config": {"mediaType": prov.EMPTY_MEDIA_TYPE,
                                      "digest": prov.EMPTY_DIGEST, "size": 2},
                           "layers": []})
    client.put_manifest(repository, "1.0", body, prov.MANIFEST_MEDIA_TYPE)
    digest = server.digest(repository, "1.0")
    return client, server, f"{namespace}/train", repository, digest


def envelope(keys, image_ref: str, digest: str, commit: str = COMMIT,
             key: str = "builder") -> bytes:
    stmt = prov.statement(image_ref, digest, component="train", version="1.0.0",
                          input_hash="ih-abc", build_args={}, source_repo=None,
                          source_commit=commit, builder="https://ci.example/runner",
                          started="2026-01-01T00:00:00Z", finished="2026-01-01T00:01:00Z")
    return attest.sign_statement(stmt, keys[key], keyid=key)


def find(client, ref, digest, keys, commit=COMMIT, builders=(BUILDER,)):
    return attest.find_valid(client, ref, digest, commit, keys["signers"], builders)


def refusal(client, ref, digest, keys, **kw) -> str:
    with pytest.raises(ApprovalError) as err:
        find(client, ref, digest, keys, **kw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_attach_then_find_valid(image, keys):
    client, server, ref, repository, digest = image
    manifest = attest.attach(client, repository, digest, envelope(keys, ref, digest))
    assert manifest == server.digest(repository, prov.att_tag(digest))
    found = find(client, ref, digest, keys)
    assert found["signer"] == BUILDER and found["keyid"] == "builder"
    assert found["manifest"] == manifest
    assert (found["builder"], found["source_commit"], found["input_hash"],
            found["component"]) == ("https://ci.example/runner", COMMIT, "ih-abc", "train")


def test_a_second_attach_appends_and_the_same_envelope_twice_is_one_layer(image, keys):
    client, server, ref, repository, digest = image
    first, second = envelope(keys, ref, digest), envelope(keys, ref, digest, commit="2" * 40)
    one = attest.attach(client, repository, digest, first)
    assert attest.attach(client, repository, digest, first) == one
    two = attest.attach(client, repository, digest, second)
    body, _ = client.get_manifest(repository, prov.att_tag(digest))
    assert two != one and len(prov.attestation_layers(body)) == 2
    assert find(client, ref, digest, keys, commit="2" * 40)["source_commit"] == "2" * 40
    assert find(client, ref, digest, keys)["source_commit"] == COMMIT
    assert server.tags(repository) == sorted(["1.0", prov.att_tag(digest)])


def test_no_attestation(image, keys):
    client, _, ref, _, digest = image
    assert refusal(client, ref, digest, keys) == (
        f"no signed provenance for {ref}@{digest} (tag {prov.att_tag(digest)})")


def test_signed_by_an_unlisted_key(image, keys):
    client, _, ref, repository, digest = image
    attest.attach(client, repository, digest, envelope(keys, ref, digest, key="stranger"))
    assert refusal(client, ref, digest, keys).endswith("signed by a key not in allowed_signers")


def test_signed_by_a_principal_who_is_not_a_builder(image, keys):
    client, _, ref, repository, digest = image
    attest.attach(client, repository, digest, envelope(keys, ref, digest, key="manager"))
    assert refusal(client, ref, digest, keys).endswith(f"signed by {MANAGER}, not a builder")
    assert refusal(client, ref, digest, keys, builders=("someone@else",)).startswith(
        f"no valid signed provenance for {ref}@{digest}")


def test_statement_for_another_digest(image, keys):
    client, _, ref, repository, digest = image
    other = "sha256:" + "e" * 64
    attest.attach(client, repository, digest, envelope(keys, ref, other))
    assert refusal(client, ref, digest, keys).endswith(
        f"provenance is for sha256:{'e' * 12}..., not {digest}")


def test_statement_from_another_source_commit(image, keys):
    client, _, ref, repository, digest = image
    attest.attach(client, repository, digest, envelope(keys, ref, digest))
    assert refusal(client, ref, digest, keys, commit="9" * 40).endswith(
        f"provenance says source commit {COMMIT}, not {'9' * 40}")


def tampered(raw: bytes) -> bytes:
    doc = json.loads(raw)
    stmt = json.loads(base64.b64decode(doc["payload"]))
    stmt["predicate"]["buildDefinition"]["internalParameters"]["input_hash"] = "ih-forged"
    doc["payload"] = base64.b64encode(prov.serialize(stmt)).decode()
    return json.dumps(doc).encode()


def test_a_tampered_payload_no_longer_verifies(image, keys):
    client, _, ref, repository, digest = image
    attest.attach(client, repository, digest, tampered(envelope(keys, ref, digest)))
    assert refusal(client, ref, digest, keys).endswith(
        f"the signature by {BUILDER} does not verify (payload altered, or not signed for "
        f"namespace {prov.NAMESPACE})")


def test_a_signature_for_another_namespace_does_not_count(image, keys):
    client, _, ref, repository, digest = image
    payload, _ = prov.parse_envelope(envelope(keys, ref, digest))
    git_sig = sshsig.sign(prov.pae(prov.PAYLOAD_TYPE, payload), keys["builder"], "git")
    attest.attach(client, repository, digest, prov.envelope(payload, git_sig, "builder"))
    assert "does not verify" in refusal(client, ref, digest, keys)


def test_each_rejected_layer_gives_its_reason_and_a_valid_one_still_counts(image, keys):
    client, _, ref, repository, digest = image
    attest.attach(client, repository, digest, envelope(keys, ref, digest, key="stranger"))
    attest.attach(client, repository, digest, b"not json")
    message = refusal(client, ref, digest, keys)
    assert "signed by a key not in allowed_signers; " in message
    assert "provenance envelope is not valid JSON" in message
    attest.attach(client, repository, digest, envelope(keys, ref, digest))
    assert find(client, ref, digest, keys)["signer"] == BUILDER


def test_an_oversized_envelope_is_not_downloaded(image, keys):
    client, _, ref, repository, digest = image
    attest.attach(client, repository, digest, b" " * (prov.MAX_ENVELOPE + 1))
    assert refusal(client, ref, digest, keys).endswith(
        f"envelope is {prov.MAX_ENVELOPE + 1} bytes, more than {prov.MAX_ENVELOPE}")


def test_no_builders_trusts_nothing(image, keys):
    client, _, ref, repository, digest = image
    attest.attach(client, repository, digest, envelope(keys, ref, digest))
    assert refusal(client, ref, digest, keys, builders=()).startswith("no builders are trusted")


def test_a_passphrase_protected_key_fails_at_once(keys):
    key, _ = keygen(keys["home"], "locked", passphrase="correct horse")
    with pytest.raises(ConfigError, match="is protected by a passphrase"):
        sshsig.sign(b"data", key, prov.NAMESPACE)
    with pytest.raises(ConfigError, match="does not exist"):
        sshsig.sign(b"data", keys["home"] / "absent", prov.NAMESPACE)


def test_sshsig_principals_and_verify(keys):
    signature = sshsig.sign(b"data", keys["builder"], prov.NAMESPACE)
    assert signature.startswith("-----BEGIN SSH SIGNATURE-----")
    assert sshsig.find_principals(signature, keys["signers"]) == [BUILDER]
    assert sshsig.find_principals("not a signature", keys["signers"]) == []
    assert sshsig.verify(b"data", signature, keys["signers"], BUILDER, prov.NAMESPACE)
    assert not sshsig.verify(b"date", signature, keys["signers"], BUILDER, prov.NAMESPACE)
    assert sshsig.verified_principal(b"data", signature, keys["signers"], {BUILDER},
                                     prov.NAMESPACE) == BUILDER
    assert sshsig.verified_principal(b"data", signature, keys["signers"], {MANAGER},
                                     prov.NAMESPACE) is None
    with pytest.raises(ConfigError, match="allowed signers file .* does not exist"):
        sshsig.find_principals(signature, keys["home"] / "nothing")


def test_blobs_round_trip_capped_and_hash_checked(image):
    client, _, _, repository, _ = image
    digest = client.put_blob(repository, b"hello blob")
    assert client.put_blob(repository, b"hello blob") == digest
    assert client.blob_exists(repository, digest)
    assert client.get_blob(repository, digest, max_bytes=10) == b"hello blob"
    with pytest.raises(RegistryError, match="is 10 bytes, more than the 9 allowed"):
        client.get_blob(repository, digest, max_bytes=9)
    assert not client.blob_exists(repository, "sha256:" + "0" * 64)
    with pytest.raises(RegistryError, match="HTTP 404"):
        client.get_blob(repository, "sha256:" + "0" * 64, max_bytes=10)


@pytest.mark.parametrize(("location", "path"), [
    ("/v2/a/b/blobs/uploads/u1?_state=s", "/v2/a/b/blobs/uploads/u1?_state=s"),
    ("http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1", "/v2/a/b/blobs/uploads/u1"),
    ("u1?x=1", "/v2/a/b/blobs/uploads/u1?x=1"),
])
def test_upload_locations_relative_and_absolute(location, path):
    assert Registry("127.0.0.1:5000")._upload_path("a/b", location) == path


@pytest.mark.parametrize("location", ["", "http://elsewhere:5000/v2/a/b/blobs/uploads/u1",
                                      "https://127.0.0.1:5000/v2/a/b/blobs/uploads/u1"])
def test_upload_locations_on_another_host_are_refused(location):
    with pytest.raises(RegistryError, match="unusable Location"):
        Registry("127.0.0.1:5000")._upload_path("a/b", location)


@pytest.fixture
def proxied(registry_server):
    from tests.support.faultproxy import FaultProxy

    with FaultProxy(("127.0.0.1", registry_server.port)) as proxy:
        yield proxy, Registry(proxy.address, policy=FAST)


def test_blob_transfers_retry_transient_faults(proxied, registry):
    proxy, client = proxied
    repository = registry[1].split("/", 1)[1] + "/faults"
    proxy.http_status_first(2, 503)
    blob = b"x" * 65536
    digest = client.put_blob(repository, blob)
    assert proxy.faults_injected == 2
    proxy.reset_mid_transfer_first(1, after_bytes=2000)  # past the headers, in the body
    fresh = Registry(proxy.address, policy=FAST)  # a new client makes a new connection
    assert fresh.get_blob(repository, digest, max_bytes=65536) == blob
    assert proxy.faults_injected == 3
