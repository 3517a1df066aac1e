"""mlops.trustroot.resolve: settled once per HEAD of a workspace, again whenever HEAD moves.

A promotion asks for the root two or three times at one HEAD (whether approval
is needed, the approval, provenance); settling the history each time cost a
log, a batch read and the signature checks. A root kept past a commit or a
refresh would be a stale trust decision, so those are tested with a real
signed change on a real remote.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops import config as cfg
from mlops import names, trustroot
from mlops.adapters.gitops.workspace import Workspace
from mlops.errors import ApprovalError
from tests.conftest import git, write_files
from tests.support.promotion import CONFIG, ssh_key


def _repo(tmp_path: Path) -> tuple[Path, Path, dict[str, tuple[Path, str]]]:
    """(bare remote, a clone that pushes to it, keys): alice is the release manager."""
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "carol")}
    clone = tmp_path / "clone"
    clone.mkdir()
    git(clone, "init", "-q", "-b", "main")
    git(clone, "config", "user.name", "t")
    git(clone, "config", "user.email", "t@example.com")
    write_files(clone, {
        "mlops.yaml": CONFIG.format(registry="127.0.0.1:5000/t", soak="0s"),
        ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n",
    })
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "first")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(clone), str(remote))
    git(clone, "remote", "add", "origin", str(remote))
    return remote, clone, keys


def _trust_carol_signed_by_alice(clone: Path, keys) -> None:
    signers = clone / ".mlops/allowed_signers"
    signers.write_text(signers.read_text() + f"carol@example.com {keys['carol'][1]}\n")
    config = clone / "mlops.yaml"
    config.write_text(config.read_text().replace(
        "release_managers: [alice@example.com]",
        "release_managers: [alice@example.com, carol@example.com]"))
    git(clone, "add", "-A")
    git(clone, "-c", "gpg.format=ssh", "-c", f"user.signingkey={keys['alice'][0]}",
        "commit", "-q", "-S", "-m", "trust carol")


@pytest.fixture
def counted(monkeypatch):
    """How often the history was settled."""
    calls = []
    settle = trustroot._changes

    def counting(ws):
        calls.append(ws)
        return settle(ws)

    monkeypatch.setattr(trustroot, "_changes", counting)
    return calls


def test_one_head_is_settled_once(tmp_path, counted):
    remote, clone, _ = _repo(tmp_path)
    config = cfg.load_config(clone, {})
    with Workspace(str(remote), "main") as ws:
        first = trustroot.resolve(ws, config)
        assert trustroot.resolve(ws, config) is first
        assert trustroot.approval_needed(ws, config, config.environments[2])
    assert len(counted) == 1
    assert first.state.release_managers == ("alice@example.com",)


def test_a_refresh_to_a_new_head_settles_again(tmp_path, counted):
    remote, clone, keys = _repo(tmp_path)
    config = cfg.load_config(clone, {})
    with Workspace(str(remote), "main") as ws:
        before = trustroot.resolve(ws, config)
        _trust_carol_signed_by_alice(clone, keys)
        git(clone, "push", "-q", "origin", "main")
        ws.refresh()
        after = trustroot.resolve(ws, config)
    assert len(counted) == 2
    assert before.state.release_managers == ("alice@example.com",)
    assert after.state.release_managers == ("alice@example.com", "carol@example.com")


def test_a_commit_in_the_workspace_settles_again(tmp_path, counted):
    remote, clone, keys = _repo(tmp_path)
    config = cfg.load_config(clone, {})
    with Workspace(str(remote), "main") as ws:
        trustroot.resolve(ws, config)
        (ws.root / "notes.txt").write_text("a change that touches no trust file\n")
        ws.commit("notes")
        trustroot.resolve(ws, config)
        trustroot.resolve(ws, config)
    assert len(counted) == 2


@pytest.mark.parametrize("path", [":!*ml*", ":(exclude)mlops.yaml", ":(glob)**"])
def test_a_pathspec_as_allowed_signers_cannot_hide_the_trust_history(tmp_path, path):
    """An unsigned commit naming a pathspec as its signers file, then an unsigned take-over:
    had git read `:!*ml*` as "exclude", every commit that touched mlops.yaml (the first
    trust root among them) would vanish and the take-over would be trusted on first use."""
    remote, clone, keys = _repo(tmp_path)
    config = clone / "mlops.yaml"
    config.write_text(config.read_text() + f"  allowed_signers: '{path}'\n")
    git(clone, "commit", "-q", "-am", "innocuous-looking")
    (clone / "evil_signers").write_text(f"mallory@example.com {keys['carol'][1]}\n")
    config.write_text(config.read_text().replace(f"'{path}'", "evil_signers").replace(
        "release_managers: [alice@example.com]", "release_managers: [mallory@example.com]"))
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "take over")
    git(clone, "push", "-q", "origin", "main")
    with Workspace(str(remote), "main") as ws:
        with pytest.raises(ApprovalError, match="leaves mlops.yaml or the allowed-signers file unreadable"):
            trustroot.resolve(ws, cfg.load_config(clone, {}))


def test_a_path_that_git_would_read_as_magic_is_refused_in_the_config():
    assert "starts with ':'" in names.repo_path_problem(":!*ml*")
    assert "control characters" in names.repo_path_problem("a\nb")
    assert names.repo_path_problem(".mlops/allowed_signers") is None
