"""Git adapter: the only importer of GitPython.

Reads what the build needs to know about a working tree: the tracked files
with their blob ids (dirty files hashed from the working tree), the HEAD
commit and what changed since a ref.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from mlops.errors import GitError
from mlops.inputs import TrackedFile, git_blob_id


@dataclass(frozen=True)
class TreeState:
    files: tuple[TrackedFile, ...]
    dirty: frozenset[str]
    head: str | None


def find_root(start: Path) -> Path:
    """The top of the git work tree containing `start`."""
    try:
        repo = git.Repo(start, search_parent_directories=True)
    except git.NoSuchPathError:
        raise GitError(f"{start}: no such directory") from None
    except git.InvalidGitRepositoryError:
        raise GitError(f"{start}: not inside a git repository (use --repo DIR)") from None
    if repo.working_tree_dir is None:
        raise GitError(f"{start}: is a bare repository; mlops needs a work tree")
    return Path(repo.working_tree_dir)


def _repo(root: Path) -> git.Repo:
    try:
        return git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{root}: not a git repository") from None


def _run(repo: git.Repo, *args: str) -> str:
    try:
        return str(repo.git.execute(["git", *args], strip_newline_in_stdout=False))
    except git.GitCommandError as exc:
        detail = (exc.stderr or "").strip().replace("\n", " ")
        raise GitError(f"git {args[0]} failed: {detail or exc.status}") from None


def head_commit(repo: git.Repo) -> str | None:
    try:
        return repo.head.commit.hexsha
    except ValueError:
        return None  # no commits yet


def tree_state(root: Path, paths: Sequence[str]) -> TreeState:
    """Tracked files below `paths`, with working-tree edits folded in."""
    repo = _repo(root)
    head = head_commit(repo)
    index = _ls_files(repo, paths)
    dirty = _dirty_paths(repo, head, paths)
    files = [_fold_worktree(root, f) if f.path in dirty else f for f in index]
    present = tuple(f for f in files if f is not None)
    return TreeState(files=tuple(sorted(present)), dirty=frozenset(dirty), head=head)


def _ls_files(repo: git.Repo, paths: Sequence[str]) -> list[TrackedFile]:
    out = _run(repo, "ls-files", "-s", "-z", "--", *paths)
    files = []
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, blob, _stage = meta.split(" ")
        files.append(TrackedFile(path=path, mode=mode, blob=blob))
    return files


def _dirty_paths(repo: git.Repo, head: str | None, paths: Sequence[str]) -> set[str]:
    """Tracked paths whose working-tree content may differ from HEAD."""
    if head is None:
        out = _run(repo, "ls-files", "-z", "--", *paths)
    else:
        out = _run(repo, "diff-index", "--name-only", "-z", "HEAD", "--", *paths)
    return {p for p in out.split("\0") if p}


def _fold_worktree(root: Path, f: TrackedFile) -> TrackedFile | None:
    path = root / f.path
    if path.is_symlink():
        return TrackedFile(f.path, "120000", git_blob_id(str(path.readlink()).encode()))
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None  # deleted in the work tree: not part of the image any more
    mode = "100755" if path.stat().st_mode & 0o111 else "100644"
    return TrackedFile(f.path, mode, git_blob_id(content))


def changed_since(root: Path, ref: str, paths: Iterable[str]) -> set[str]:
    """Tracked paths that differ between `ref` and the working tree."""
    repo = _repo(root)
    if ref.startswith("-"):
        raise GitError(f"unknown git ref {ref!r}")
    try:
        repo.git.execute(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    except git.GitCommandError:
        raise GitError(f"unknown git ref {ref!r}") from None
    out = _run(repo, "diff", "--name-only", "-z", ref, "--", *paths)
    return {p for p in out.split("\0") if p}


def git_dir(root: Path) -> Path:
    return Path(_repo(root).git_dir)
