"""services.changes.in_workspace: a retry after branch code ran works in a new clone.

Pipeline code compiled in an attempt runs with the promoter's rights and could
rewrite that attempt's clone (its `.git`, or the user's clone it borrows objects
from). The retry after a rejected push then clones anew, borrowing nothing;
without branch code it only refreshes the clone it has.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlops import config as cfg
from mlops.adapters import compile_child
from mlops.adapters.gitops.workspace import PushRejected
from mlops.context import Context
from mlops.output import Output
from mlops.services.changes import in_workspace
from tests.conftest import git, write_files

CONFIG = "registry: 127.0.0.1:5000/t\nenvironments:\n  - name: dev\n"


@pytest.fixture
def clone(tmp_path) -> Path:
    """A user's clone with an origin."""
    work = tmp_path / "clone"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    write_files(work, {"mlops.yaml": CONFIG})
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", "first")
    git(tmp_path, "clone", "-q", "--bare", str(work), str(tmp_path / "remote.git"))
    git(work, "remote", "add", "origin", str(tmp_path / "remote.git"))
    return work


def _run_twice(clone: Path, branch_code: bool) -> list[tuple[Path, bool]]:
    """(workspace path, borrows objects) of each attempt; the first one's push is refused."""
    seen: list[tuple[Path, bool]] = []

    def attempt(ws):
        alternates = ws.root / ".git/objects/info/alternates"
        seen.append((ws.path, alternates.exists()))
        if len(seen) == 1:
            if branch_code:
                compile_child.runs += 1  # what compile_file counts for each pipeline it runs
            raise PushRejected("the remote moved on")
        return "done"

    ctx = Context(root=clone, out=Output(False, io.StringIO(), io.StringIO()), environ={})
    assert in_workspace(ctx, cfg.load_config(clone, {}), attempt) == "done"
    return seen


def test_a_retry_after_branch_code_clones_anew_and_borrows_nothing(clone):
    (first, borrowed), (second, borrows) = _run_twice(clone, branch_code=True)
    assert borrowed and not borrows
    assert first != second and not first.exists()


def test_a_retry_without_branch_code_keeps_its_clone(clone):
    (first, borrowed), (second, borrows) = _run_twice(clone, branch_code=False)
    assert first == second and borrowed and borrows
