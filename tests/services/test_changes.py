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


@pytest.fixture(autouse=True)
def no_branch_code_yet(monkeypatch):
    """As in a fresh `mlops` process: this process has compiled no pipeline yet."""
    monkeypatch.setattr(compile_child, "runs", 0)


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


def test_a_later_workspace_in_the_process_borrows_nothing_once_branch_code_ran(clone):
    """`rollout run` makes one workspace per step in one process: after a step compiled
    the branch's pipelines, the user's clone may hold objects that code wrote."""
    _run_twice(clone, branch_code=True)
    seen = []
    ctx = Context(root=clone, out=Output(False, io.StringIO(), io.StringIO()), environ={})
    in_workspace(ctx, cfg.load_config(clone, {}),
                 lambda ws: seen.append((ws.root / ".git/objects/info/alternates").exists()))
    assert seen == [False]


def test_the_pinned_root_is_the_one_read_before_branch_code_ran(clone, tmp_path):
    """A retry (or a later step) must not re-read a pinned trust root the first attempt's
    pipeline code could have rewritten."""
    from mlops import trustroot

    pinned = tmp_path / "root.yaml"
    pinned.write_text("release_managers: [alice@example.com]\n")
    config = cfg.load_config(clone, {"MLOPS_TRUST_ROOT": str(pinned)})
    seen = []

    def attempt(ws):
        seen.append(trustroot.resolve(ws, config).state.release_managers)
        if len(seen) == 1:
            compile_child.runs += 1
            pinned.write_text("release_managers: [mallory@example.com]\n")  # branch code
            raise PushRejected("the remote moved on")

    ctx = Context(root=clone, out=Output(False, io.StringIO(), io.StringIO()), environ={})
    in_workspace(ctx, config, attempt)
    assert seen == [("alice@example.com",), ("alice@example.com",)]
