"""Signed build provenance, end to end on the real engine, registry, git and ssh-keygen.

`mlops build --sign-key` attaches an SSH-signed SLSA statement to every image
it pushes or reuses (cosign's `sha256-<hex>.att` tag); once the trust root
lists builders, `mlops promote` verifies one for every pinned digest, naming
the release's source commit, and refuses anything else with exit 4.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mlops.adapters.registry import Registry
from mlops.core import provenance as prov
from mlops.inputs import ih_tag
from mlops.names import split_image
from tests.commands.conftest import build_repo, promote
from tests.conftest import git
from tests.support.promotion import Playground, repo_files, ssh_key
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

BUILDER = "ci@example.com"


def _mlops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlops", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def signed(tmp_path_factory, registry_server):
    """The tiny components built, pushed and signed by the CI builder's key, in a namespace
    of their own (a test here overwrites a tag); (namespace, repo, record, keys)."""
    base = tmp_path_factory.mktemp("signed-build")
    keys = {name: ssh_key(base, name) for name in ("ci", "mallory")}
    ns = f"{registry_server.host}/signed{uuid.uuid4().hex[:8]}"
    repo, record = build_repo(base, ns, "--sign-key", str(keys["ci"][0]), "--builder", BUILDER)
    return ns, repo, record, keys


def _trusting(ns: str, keys, builders: str = f"[{BUILDER}]") -> dict:
    files = repo_files(ns)
    files["mlops.yaml"] = str(files["mlops.yaml"]).replace(
        "approvals:\n", f"approvals:\n  builders: {builders}\n")
    files[".mlops/allowed_signers"] = f"{BUILDER} {keys['ci'][1]}\n"
    return files


@pytest.fixture
def play(project, signed, tmp_path):
    ns, _, _, keys = signed
    return Playground(tmp_path, project(_trusting(ns, keys)))


def test_build_attaches_a_signed_statement_to_every_image(signed):
    ns, repo, record, _ = signed
    builds = json.loads(record.read_text())["builds"]
    assert {b["component"] for b in builds} == {"preprocess", "train", "evaluate"}
    client = Registry(ns.split("/")[0])
    for entry in builds:
        assert entry["provenance"]["builder"] == BUILDER
        assert entry["provenance"]["tag"] == prov.att_tag(entry["digest"])
        repository = split_image(entry["image"])[1]
        assert client.manifest_digest(repository, entry["provenance"]["tag"]) == \
            entry["provenance"]["attestation"]


def test_promotion_verifies_provenance_and_records_the_builder(play, signed):
    _, repo, record, _ = signed
    result = promote(play, "--to", "dev", "--build", str(record), "--json")
    assert result.code == 0, result.err
    found = result.json["provenance"]
    assert [p["component"] for p in found] == ["evaluate", "preprocess", "train"]
    assert {p["builder"] for p in found} == {BUILDER}
    message = git(play.remote, "log", "-1", "--format=%B", "refs/heads/main")
    assert f"Mlops-Provenance: train={BUILDER}" in message
    history = play.proj.run("history", "--env", "dev", "--json")
    assert history.json["entries"][0]["provenance"] == {
        "evaluate": BUILDER, "preprocess": BUILDER, "train": BUILDER}
    human = play.proj.run("history", "--env", "dev")
    assert "provenance 3 signed" in human.out
    staging = promote(play, "--to", "staging", "--from", "dev", "--metrics",
                      str(play.metrics("m", {"accuracy": 0.95})), "--json")
    assert staging.code == 0 and len(staging.json["provenance"]) == 3, staging.err


def _refused(play, record: Path, *expected: str) -> None:
    before = Snapshot.take(repo=play.clone, remote=play.remote)
    result = promote(play, "--to", "dev", "--build", str(record))
    assert result.code == 4, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("mlops: error: "), result.err
    for text in expected:
        assert text in result.err, result.err
    before.assert_same(Snapshot.take(repo=play.clone, remote=play.remote))


def test_an_unsigned_build_is_refused(project, tmp_path, signed, built):
    """The session's shared images were built without a key: no statement exists."""
    ns, record = built
    play = Playground(tmp_path, project(_trusting(ns, signed[3])))
    _refused(play, record, "no signed provenance for", "(tag sha256-")


def test_a_build_signed_by_an_unlisted_key_is_refused(signed, tmp_path, project):
    """Mallory signs the build of a new commit; only ci's key is trusted, and ci's
    statements name the earlier commit, so no statement vouches for this one."""
    ns, repo, _, keys = signed
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "--allow-empty",
        "-m", "a commit only mallory builds")
    record = tmp_path / "mallory.json"
    proc = _mlops("build", "--repo", str(repo), "--output", str(record),
                  "--sign-key", str(keys["mallory"][0]), "--builder", "mallory@example.com")
    assert proc.returncode == 0, proc.stderr
    play = Playground(tmp_path, project(_trusting(ns, keys)))
    _refused(play, record, "no valid signed provenance", "signed by a key not in",
             "source commit")


def test_a_tampered_image_under_the_same_tag_is_refused(play, signed, tmp_path):
    """An insider pushes other content under a component's ih- tag by hand and writes a
    build record with its digest: the record now matches the registry, but no builder
    ever signed that digest."""
    _, _, record, _ = signed
    data = json.loads(record.read_text())
    entry = next(b for b in data["builds"] if b["component"] == "train")
    host, repository = split_image(entry["image"])
    client = Registry(host)
    tag = ih_tag(entry["input_hash"])
    real = client.get_manifest(repository, tag)
    assert client.manifest_digest(repository, tag) == entry["digest"]
    client.put_blob(repository, prov.EMPTY_BLOB)
    body, media_type = prov.attestation_manifest([])  # any manifest the registry takes
    try:
        client.put_manifest(repository, tag, body, media_type)
        entry["digest"] = client.manifest_digest(repository, tag)
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps(data))
        _refused(play, forged, f"no signed provenance for {entry['image']}@{entry['digest']}")
    finally:  # the real image back under its tag, for the module's other tests
        client.put_manifest(repository, tag, *real)


def test_signing_needs_a_builder_and_a_push(signed):
    _, repo, _, keys = signed
    no_builder = _mlops("build", "--repo", str(repo), "--sign-key", str(keys["ci"][0]))
    assert no_builder.returncode == 2 and "builder's principal" in no_builder.stderr
    no_push = _mlops("build", "--repo", str(repo), "--no-push", "--sign-key",
                     str(keys["ci"][0]), "--builder", BUILDER)
    assert no_push.returncode == 2 and "pushed images" in no_push.stderr
