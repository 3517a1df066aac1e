"""Signed provenance: the promises tests/commands/test_provenance.py leaves to this file.

- `approvals.builders` is part of the trust root: an unsigned commit that
  empties, removes or extends it does not switch provenance off (or on for
  someone else); a change a release manager signs does; a pinned root's
  `builders:` is what counts, and the branch's lists are then not read.
- `mlops rollout start` verifies provenance as `mlops promote` does, for a
  first release and for a canary step: exit 4, one line, nothing committed.
- Signing refuses a build of uncommitted changes (exit 2), before anything is
  built, pushed or signed.
- A reused image gets a statement for the new commit.
- `$MLOPS_SIGNING_KEY` and `$MLOPS_BUILDER` are the signing flags' defaults.

Real engine, registry, git and ssh-keygen; the images are built once per module,
in a registry namespace of its own, and every later build reuses them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops.adapters.registry import Registry
from mlops.core import provenance as prov
from mlops.names import split_image
from tests.commands.conftest import GOOD, build_repo, promote, release_of
from tests.commands.test_rollout import CANARY
from tests.conftest import git
from tests.support.promotion import CONFIG, Playground, repo_files, ssh_key
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

BUILDER = "ci@example.com"
MANAGER = "alice@example.com"
UNTRUSTED_CHANGE = ("the trust root (allowed signers, release managers, builders) was changed "
                    "by commit ")
ENV_KEYS = ("MLOPS_SIGNING_KEY", "MLOPS_BUILDER")


def _mlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    return subprocess.run([sys.executable, "-m", "mlops", *args], capture_output=True,
                          text=True, env={**base, **(env or {})})


def _clone(repo: Path, dest: Path, message: str | None = None) -> Path:
    """A clone of the module's build repo, with one more commit that touches no component."""
    git(dest.parent, "clone", "-q", str(repo), str(dest))
    if message is not None:
        (dest / "NOTES.md").write_text(f"{message}\n")
        git(dest, "add", "NOTES.md")
        git(dest, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", message)
    return dest


def _build(repo: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = _mlops("build", "--repo", str(repo), "--output", str(out), *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


@dataclass(frozen=True)
class Signed:
    ns: str
    repo: Path  # the build repo, at commit A
    record: Path  # commit A's build, signed by ci
    unsigned: Path  # commit B's build (same images, reused), signed by nobody
    keys: dict


@pytest.fixture(scope="module")
def signed(tmp_path_factory, registry_server) -> Signed:
    base = tmp_path_factory.mktemp("provenance-more")
    keys = {name: ssh_key(base, name) for name in ("alice", "ci", "mallory")}
    ns = f"{registry_server.host}/prov{uuid.uuid4().hex[:8]}"
    repo, record = build_repo(base, ns, "--sign-key", str(keys["ci"][0]), "--builder", BUILDER)
    b = _clone(repo, base / "b", "commit B: notes only")
    unsigned = base / "unsigned-b.json"
    assert {e["status"] for e in _build(b, unsigned)["builds"]} == {"reused"}
    return Signed(ns, repo, record, unsigned, keys)


def _signers(keys, *who: str) -> str:
    return "".join(f"{name}@example.com {keys[name][1]}\n" for name in who)


def _files(s: Signed, builders: str | None = f"[{BUILDER}]", config: str | None = None) -> dict:
    """The tiny project for the module's namespace: alice manages releases, and (unless
    `builders` is None) the branch's trust root lists `builders`."""
    files = repo_files(s.ns)
    text = config if config is not None else str(files["mlops.yaml"])
    if builders is not None:
        text = text.replace("approvals:\n", f"approvals:\n  builders: {builders}\n")
    files["mlops.yaml"] = text
    files[".mlops/allowed_signers"] = _signers(s.keys, "alice", "ci")
    return files


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert text.count(old) == 1, (old, text)
        return text.replace(old, new)
    return edit


def _push(play, message: str, edits: dict, signer=None) -> str:
    """One commit of {path: edit(text) -> text}, signed by `signer`'s key or not; its sha."""
    play.pull()
    for path, edit in edits.items():
        file = play.clone / path
        file.write_text(edit(file.read_text()))
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signer}", "commit", "-S"] \
        if signer else ["commit"]
    git(play.clone, "add", "-A")
    git(play.clone, *sign, "-q", "-m", message)
    git(play.clone, "push", "-q", "origin", "main")
    return git(play.clone, "rev-parse", "HEAD")


def _refused(play, args, *expected: str, env=None) -> None:
    """Exit 4, one line naming `expected`, and neither the clone nor the remote changed."""
    before = Snapshot.take(repo=play.clone, remote=play.remote)
    result = play.proj.run(*args, env=env)
    assert result.code == 4, (result.code, result.err)
    assert result.err.count("\n") == 1 and result.err.startswith("mlops: error: "), result.err
    for text in expected:
        assert text in result.err, result.err
    before.assert_same(Snapshot.take(repo=play.clone, remote=play.remote))


def _to_dev(record: Path, *more: str) -> tuple[str, ...]:
    return ("promote", "--to", "dev", "--build", str(record), *more)


# -- 1. approvals.builders is part of the trust root ---------------------------------------


def _builders_emptied(s):
    return {"mlops.yaml": _replace(f"builders: [{BUILDER}]", "builders: []")}


def _builders_removed(s):
    return {"mlops.yaml": _replace(f"  builders: [{BUILDER}]\n", "")}


def _mallory_made_a_builder(s):
    """The attacker's own key and principal as a builder, beside ci."""
    return {"mlops.yaml": _replace(f"builders: [{BUILDER}]",
                                   f"builders: [{BUILDER}, mallory@example.com]"),
            ".mlops/allowed_signers": lambda text: text + _signers(s.keys, "mallory")}


@pytest.mark.parametrize("change", [_builders_emptied, _builders_removed,
                                    _mallory_made_a_builder])
def test_an_unsigned_change_of_builders_does_not_take_effect(signed, project, tmp_path, change):
    """Provenance is required; an unsigned commit that would switch it off (builders
    emptied or removed) or trust another builder (mallory, who signs commit B's build)
    refuses the promotion with exit 4 naming the commit, and nothing moves."""
    play = Playground(tmp_path, project(_files(signed)))
    if change is _mallory_made_a_builder:
        record = tmp_path / "mallory-b.json"
        _build(_clone(signed.repo, tmp_path / "b", "commit B, which mallory builds"), record,
               "--sign-key", str(signed.keys["mallory"][0]), "--builder", "mallory@example.com")
    else:
        record = signed.unsigned
    _refused(play, _to_dev(record), "no valid signed provenance for", "source commit")

    sha = _push(play, "builders, changed unsigned", change(signed))
    _refused(play, _to_dev(record), f"{UNTRUSTED_CHANGE}{sha[:10]}",
             "which is not signed by a trusted key (no signature)")


def test_a_signed_change_of_builders_takes_effect(signed, project, tmp_path):
    """alice (a release manager) signs the commit that empties builders: provenance is
    switched off, and the build nobody signed promotes."""
    play = Playground(tmp_path, project(_files(signed)))
    _refused(play, _to_dev(signed.unsigned), "no valid signed provenance for")
    _push(play, "no provenance checks", _builders_emptied(signed),
          signer=signed.keys["alice"][0])
    result = play.proj.run(*_to_dev(signed.unsigned, "--json"))
    assert result.code == 0, result.err
    assert result.json["provenance"] is None
    assert "Mlops-Provenance" not in git(play.remote, "log", "-1", "--format=%B", "main")


def _pinned(tmp_path, s: Signed, builders: str | None) -> Path:
    root = tmp_path / "trust-root.yaml"
    root.write_text("allowed_signers: |\n"
                    + "".join(f"  {line}\n" for line in _signers(s.keys, "alice", "ci").splitlines())
                    + f"release_managers: [{MANAGER}]\n"
                    + (f"builders: {builders}\n" if builders is not None else ""))
    return root


def test_a_pinned_root_listing_builders_is_honoured(signed, project, tmp_path):
    """The branch lists no builders; the pinned root does, so provenance is required,
    by --trust-root and by $MLOPS_TRUST_ROOT alike."""
    play = Playground(tmp_path, project(_files(signed, builders=None)))
    root = _pinned(tmp_path, signed, f"[{BUILDER}]")
    _refused(play, _to_dev(signed.unsigned, "--trust-root", str(root)),
             "no valid signed provenance for", "source commit")
    _refused(play, _to_dev(signed.unsigned), "no valid signed provenance for",
             env={"MLOPS_TRUST_ROOT": str(root)})

    verified = play.proj.run(*_to_dev(signed.record, "--json"),
                             env={"MLOPS_TRUST_ROOT": str(root)})
    assert verified.code == 0, verified.err
    assert {p["builder"] for p in verified.json["provenance"]} == {BUILDER}
    assert f"Mlops-Provenance: train={BUILDER}" in git(play.remote, "log", "-1",
                                                        "--format=%B", "main")
    unpinned = play.proj.run(*_to_dev(signed.unsigned, "--json"))  # the branch's root
    assert unpinned.code == 0 and unpinned.json["provenance"] is None, unpinned.err


def test_a_pinned_root_without_builders_ignores_the_branchs_builders(signed, project,
                                                                      tmp_path):
    play = Playground(tmp_path, project(_files(signed)))
    _refused(play, _to_dev(signed.unsigned), "no valid signed provenance for")
    root = _pinned(tmp_path, signed, None)
    result = play.proj.run(*_to_dev(signed.unsigned, "--trust-root", str(root), "--json"))
    assert result.code == 0, result.err
    assert result.json["provenance"] is None


# -- 2. rollout start verifies provenance ---------------------------------------------------

BUILDERS_ON = {"mlops.yaml": _replace("approvals:\n", f"approvals:\n  builders: [{BUILDER}]\n")}


@pytest.fixture
def canary(signed, project, tmp_path):
    """prod rolls out as a canary and runs nothing yet; the branch lists no builders."""
    config = CONFIG.format(registry=signed.ns, soak="0s").replace(
        "    approval: true\n", "    approval: true\n" + CANARY)
    return Playground(tmp_path, project(_files(signed, builders=None, config=config)))


def _to_staging(play, record: Path, model: str) -> str:
    assert promote(play, "--to", "dev", "--build", str(record), "--model-uri",
                   f"pvc://models/{model}").code == 0
    result = promote(play, "--to", "staging", "--from", "dev",
                     "--metrics", str(play.metrics("m", GOOD)))
    assert result.code == 0, result.err
    return release_of(play, "staging")["id"]


def _approve(play, s: Signed, release: str) -> None:
    result = play.proj.run("approve", "--env", "prod", "--release", release, "--key",
                           str(s.keys["alice"][0]), "--principal", MANAGER)
    assert result.code == 0, result.err


def _start(play):
    return play.proj.run("rollout", "start", "--env", "prod", "--json")


def _assert_provenance_recorded(play, result) -> None:
    assert {p["builder"] for p in result.json["provenance"]} == {BUILDER}, result.json
    message = git(play.remote, "log", "-1", "--format=%B", "main")
    assert f"Mlops-Provenance: train={BUILDER}" in message, message


def test_rollout_start_of_a_first_release_verifies_provenance(canary, signed):
    """Staging holds a release nobody signed the build of when a release manager turns
    provenance on: it does not enter prod, approved or not; a signed one does."""
    play = canary
    waiting = _to_staging(play, signed.unsigned, "cancer-v1")
    _push(play, "require signed provenance", BUILDERS_ON, signer=signed.keys["alice"][0])
    _approve(play, signed, waiting)
    _refused(play, ("rollout", "start", "--env", "prod"), "no valid signed provenance for",
             "source commit")
    assert "release.yaml" not in git(play.remote, "ls-tree", "-r", "--name-only", "main",
                                     "environments/prod")

    _approve(play, signed, _to_staging(play, signed.record, "cancer-v1"))
    result = _start(play)
    assert result.code == 0 and result.json["status"] == "complete", result.err
    _assert_provenance_recorded(play, result)


def test_rollout_start_of_a_canary_verifies_provenance(canary, signed):
    """prod runs v1; staging's v2 comes from a build nobody signed: once provenance is
    required, the canary does not start; v3, signed, does."""
    play = canary
    _approve(play, signed, _to_staging(play, signed.record, "cancer-v1"))
    first = _start(play)  # no builders listed yet: no provenance asked for
    assert first.code == 0 and first.json["status"] == "complete", first.err
    stable = release_of(play, "prod")["id"]
    _to_staging(play, signed.unsigned, "cancer-v2")
    _push(play, "require signed provenance", BUILDERS_ON, signer=signed.keys["alice"][0])
    _refused(play, ("rollout", "start", "--env", "prod"), "no valid signed provenance for",
             "source commit")
    assert release_of(play, "prod")["id"] == stable

    _to_staging(play, signed.record, "cancer-v3")
    result = _start(play)
    assert result.code == 0 and result.json["status"] == "started", result.err
    assert result.json["baseline"] == stable and result.json["percent"] == 10
    _assert_provenance_recorded(play, result)


# -- 3. signing refuses uncommitted changes ------------------------------------------------


def _tags(server, ns: str) -> dict[str, list[str]]:
    repo_prefix = ns.split("/", 1)[1]
    return {c: server.tags(f"{repo_prefix}/{c}") for c in ("preprocess", "train", "evaluate")}


@pytest.mark.parametrize("how", ["modified", "staged"])
def test_signing_refuses_a_build_of_uncommitted_changes(signed, registry_server, tmp_path, how):
    """Before anything is built: no record, no tag (image or .att) in the registry, the
    clone as it was. (An untracked file is neither hashed nor built, so it is no change.)"""
    repo = _clone(signed.repo, tmp_path / "dirty")
    source = repo / "components/train/src/main.py"
    source.write_text("print('not committed')\n")
    if how == "staged":
        git(repo, "add", str(source))
    out = tmp_path / "build.json"
    before = Snapshot.take(repo=repo)
    tags = _tags(registry_server, signed.ns)
    proc = _mlops("build", "--repo", str(repo), "--output", str(out),
                  "--sign-key", str(signed.keys["ci"][0]), "--builder", BUILDER)
    assert proc.returncode == 2, proc.stderr
    assert _tags(registry_server, signed.ns) == tags  # nothing pushed, no .att tag added
    assert not out.exists()
    before.assert_same(Snapshot.take(repo=repo))
    assert proc.stderr == ("mlops: error: component train has uncommitted changes; signed "
                           "provenance names the commit an image was built from: commit "
                           "first, or build without a signing key\n")


def test_signing_refuses_a_repository_with_no_commit(signed, registry_server, tmp_path):
    repo = tmp_path / "uncommitted"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for rel, content in repo_files(signed.ns).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    git(repo, "add", "-A")  # tracked, so mlops may build it; but no commit names it
    tags = _tags(registry_server, signed.ns)
    proc = _mlops("build", "--repo", str(repo), "--sign-key", str(signed.keys["ci"][0]),
                  "--builder", BUILDER)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("mlops: error: component evaluate has uncommitted changes; signed "
                           "provenance names the commit an image was built from: commit "
                           "first, or build without a signing key\n")
    assert _tags(registry_server, signed.ns) == tags


# -- 4. a reused image gets a statement for the new commit ----------------------------------


def _layers(entry: dict) -> int:
    """How many statements the image's attestation manifest holds."""
    host, repository = split_image(entry["image"])
    body, _ = Registry(host).get_manifest(repository, prov.att_tag(entry["digest"]))
    return len(json.loads(body)["layers"])


def test_a_reused_image_gets_a_statement_for_the_new_commit(signed, project, tmp_path):
    """Commit B changes no component: its build reuses A's images. Unsigned, B's record is
    refused (A's statements name A); signed, every image gets a statement naming B, beside
    A's, and both A's and B's records promote."""
    b = _clone(signed.repo, tmp_path / "b", "commit B: docs only")
    head = git(b, "rev-parse", "HEAD")
    play = Playground(tmp_path, project(_files(signed)))
    unsigned = tmp_path / "unsigned.json"
    assert {e["status"] for e in _build(b, unsigned)["builds"]} == {"reused"}
    _refused(play, _to_dev(unsigned), "no valid signed provenance for", "source commit")

    a_entries = {e["component"]: e for e in json.loads(signed.record.read_text())["builds"]}
    layers_before = {name: _layers(e) for name, e in a_entries.items()}
    record = tmp_path / "b.json"
    doc = _build(b, record, "--sign-key", str(signed.keys["ci"][0]), "--builder", BUILDER)
    assert doc["source_commit"] == head
    for entry in doc["builds"]:
        assert entry["status"] == "reused", entry
        assert entry["digest"] == a_entries[entry["component"]]["digest"]
        assert entry["provenance"]["builder"] == BUILDER
        assert _layers(entry) == layers_before[entry["component"]] + 1

    result = promote(play, "--to", "dev", "--build", str(record), "--json")
    assert result.code == 0, result.err
    assert {p["builder"] for p in result.json["provenance"]} == {BUILDER}
    assert release_of(play, "dev")["source_commit"] == head
    earlier = promote(play, "--to", "dev", "--build", str(signed.record), "--json")
    assert earlier.code == 0 and len(earlier.json["provenance"]) == 3, earlier.err


# -- 5. $MLOPS_SIGNING_KEY and $MLOPS_BUILDER ----------------------------------------------


def test_the_signing_flags_default_to_the_environment(signed, project, tmp_path):
    """Commit C is signed through the environment alone, by a builder only it names;
    commit D with the flags as well, and the flags win. The trust root lists both
    builders, so each promotion verifies whose key really signed."""
    key, pub = ssh_key(tmp_path, "envci")
    env_builder = "envci@example.com"
    env = {"MLOPS_SIGNING_KEY": str(key), "MLOPS_BUILDER": env_builder}
    c = _clone(signed.repo, tmp_path / "c", "commit C, built in CI")

    only_key = _mlops("build", "--repo", str(c), env={"MLOPS_SIGNING_KEY": str(key)})
    assert only_key.returncode == 2 and "builder's principal" in only_key.stderr, only_key.stderr
    only_builder = _mlops("build", "--repo", str(c), env={"MLOPS_BUILDER": env_builder})
    assert only_builder.returncode == 2, only_builder.stderr
    assert "$MLOPS_BUILDER needs a signing key" in only_builder.stderr, only_builder.stderr

    by_env = _build(c, tmp_path / "c.json", env=env)
    assert {e["provenance"]["builder"] for e in by_env["builds"]} == {env_builder}
    files = _files(signed, builders=f"[{env_builder}, {BUILDER}]")
    files[".mlops/allowed_signers"] = f"{env_builder} {pub}\n" + _signers(signed.keys, "ci")
    play = Playground(tmp_path, project(files))
    result = play.proj.run(*_to_dev(tmp_path / "c.json", "--json"))
    assert result.code == 0, result.err
    assert {p["builder"] for p in result.json["provenance"]} == {env_builder}

    d = _clone(c, tmp_path / "d", "commit D, built with the flags")
    by_flags = _build(d, tmp_path / "d.json", "--sign-key", str(signed.keys["ci"][0]),
                      "--builder", BUILDER, env=env)
    assert {e["provenance"]["builder"] for e in by_flags["builds"]} == {BUILDER}
    result = play.proj.run(*_to_dev(tmp_path / "d.json", "--json"))
    assert result.code == 0, result.err
    assert {p["builder"] for p in result.json["provenance"]} == {BUILDER}
