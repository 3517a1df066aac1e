"""Soak time read from history: a promotion commit whose date git cannot print (a
committer writes it) fails the soak gate instead of crashing the promotion."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops.adapters.gitops.workspace import Workspace
from mlops.core.gates import soak_gate
from mlops.services.envhistory import entered_at
from tests.conftest import git

MESSAGE = b"promote(dev): r-1\n\nMlops-Action: promote\nMlops-Release: r-1\nMlops-Environment: dev\n"


def promoted_at(tmp_path: Path, seconds: str) -> Path:
    """A bare remote whose last commit writes dev's record, dated `seconds` as written."""
    work, remote = tmp_path / "work", tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    (work / "mlops.yaml").write_text("registry: 127.0.0.1:5000/x\n")
    git(work, "add", "-A")
    git(work, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-q", "-m", "init")
    (work / "environments" / "dev").mkdir(parents=True)
    (work / "environments" / "dev" / "release.yaml").write_text("kind: Release\n")
    git(work, "add", "-A")
    tree, parent = git(work, "write-tree"), git(work, "rev-parse", "HEAD")
    body = (f"tree {tree}\nparent {parent}\nauthor A <a@x> 1 +0000\n"
            f"committer C <c@x> {seconds} +0000\n\n").encode() + MESSAGE
    sha = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
                         cwd=work, input=body, capture_output=True, check=True
                         ).stdout.decode().strip()
    git(work, "update-ref", "refs/heads/main", sha)
    git(tmp_path, "clone", "-q", "--bare", str(work), str(remote))
    return remote


@pytest.mark.parametrize("seconds", ["9" * 400, "-99999999999999999999"],
                         ids=["400 digits", "negative"])
def test_a_date_git_cannot_print_fails_the_soak_gate(tmp_path, seconds):
    with Workspace(str(promoted_at(tmp_path, seconds)), "main") as ws:
        entered = entered_at(ws, "dev", "r-1")
    assert entered is None
    gate = soak_gate(3600, entered, 1_800_000_000, "dev")
    assert not gate.passed and "no dated promotion" in gate.detail


def test_a_readable_date_is_when_it_entered(tmp_path):
    with Workspace(str(promoted_at(tmp_path, "1700000000")), "main") as ws:
        assert entered_at(ws, "dev", "r-1") == 1700000000.0
