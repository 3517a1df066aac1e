"""Git adapter: the only module that runs git.

Every operation runs the `git` executable. Read-only plumbing on the build's
hot path (`ls-files`, `diff-index`) runs two processes in parallel: a no-op
plan over hundreds of components is measured against
`git ls-files | sha256sum`. GitPython is not used: importing it alone cost
several times that floor, and ~60 ms of every promotion.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import IO

from mlops.adapters.gitops import logformat
from mlops.errors import GitError
from mlops.records import dataclass
from mlops.tracked import TrackedFile, git_blob_id


@dataclass(frozen=True)
class TreeState:
    """Tracked files (sorted, with working-tree edits folded in), dirty paths, HEAD."""

    files: tuple[TrackedFile, ...]
    dirty: frozenset[str]
    head: str | None


def find_root(start: Path) -> Path:
    """The top of the git work tree containing `start`."""
    if not start.exists():
        raise GitError(f"{start}: no such directory")
    here = start if start.is_dir() else start.parent
    if "GIT_DIR" not in os.environ and "GIT_WORK_TREE" not in os.environ:
        # Walking up for `.git` (a dir, or a file for worktrees and submodules)
        # answers the common case without starting a process.
        for folder in (here, *here.parents):
            if (folder / ".git").exists():
                return folder
    proc = _spawn(here, "rev-parse", "--show-toplevel")
    out, err = proc.communicate()
    if proc.returncode != 0:
        if "not a git repository" in err:
            raise GitError(f"{start}: not inside a git repository (use --repo DIR)")
        raise GitError(f"{start}: {_first_line(err) or 'not a git work tree'}")
    return Path(out.strip())


def git_dir(root: Path) -> Path:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    return Path(_git(root, "rev-parse", "--absolute-git-dir").strip())


def head_commit(root: Path) -> str | None:
    proc = _spawn(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    out, _ = proc.communicate()
    return out.strip() or None


@dataclass(frozen=True)
class GitTree:
    """What git prints about the tracked files below some paths, before any parsing:
    HEAD (None before the first commit), `ls-files -s -z` and `diff-index --name-only
    -z HEAD` (empty: the work tree and the index match HEAD there)."""

    head: str | None
    listing: str
    changes: str
    # Whether git was told not to look at some of these files in the work tree
    # (assume-unchanged or skip-worktree): `changes` then does not vouch for their
    # content. None: not asked (`read_tree(..., flags=False)`).
    unwatched: bool | None = None


def read_tree(root: Path, paths: Sequence[str], flags: bool = False) -> GitTree:
    """git's own listing of the tracked files below `paths`, and of what differs from HEAD
    (`flags`: and whether any of them has the assume-unchanged or skip-worktree bit)."""
    # Three processes at once: the plan waits for the slowest, not the sum.
    rev = _spawn(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    tags = ["-v"] if flags else []  # each entry then led by its tag and a space
    listing = _spawn(root, "ls-files", "-s", *tags, "-z", "--", *paths)
    changes = _spawn(root, "diff-index", "--name-only", "-z", "HEAD", "--", *paths)
    head = rev.communicate()[0].strip() or None
    files = _finish(listing, "ls-files")
    unwatched = None
    if flags:
        unwatched = _UNWATCHED.search(files) is not None
        files = "\0".join(entry[2:] for entry in files.split("\0"))  # the tags off
    if head is None:
        changes.communicate()  # no commit yet: nothing to compare with
        return GitTree(None, files, "", unwatched)
    return GitTree(head, files, _finish(changes, "diff-index"), unwatched)


# An entry of `ls-files -s -v -z` is `<tag> <mode> <blob> <stage>\t<path>`; S:
# skip-worktree, a lowercase tag: assume-unchanged. One search of the whole listing.
_UNWATCHED = re.compile(r"(?:\A|\0)(?:S|[a-z]) ")


def tree_state(root: Path, paths: Sequence[str], tree: GitTree | None = None) -> TreeState:
    """Tracked files below `paths`, with working-tree edits folded in (`tree`: git's
    listing of them, when the caller has read it already)."""
    tree = read_tree(root, paths) if tree is None else tree
    head = tree.head
    index = _parse_ls_files(tree.listing)
    if head is None:  # no commit yet: every tracked file counts as dirty
        dirty = {f.path for f in index}
    else:
        dirty = {p for p in tree.changes.split("\0") if p}
    if dirty:
        folded = (_fold_worktree(root, f) if f.path in dirty else f for f in index)
        index = [f for f in folded if f is not None]
    # git lists paths sorted by bytes, which for UTF-8 is code point order: no re-sort.
    return TreeState(files=tuple(index), dirty=frozenset(dirty), head=head)


def _parse_ls_files(out: str) -> list[TrackedFile]:
    """`<mode> <blob> <stage>\t<path>` entries, NUL-separated; unmerged paths once."""
    files: dict[str, TrackedFile] = {}
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            mode, blob, _stage = meta.split(" ")  # blob ids are SHA-1 or SHA-256
            files[path] = TrackedFile(path, mode, blob)
    return list(files.values())


GITLINK = "160000"  # a submodule: a commit id in the index, a whole checkout in the work tree


def _fold_worktree(root: Path, f: TrackedFile) -> TrackedFile | None:
    if f.mode == GITLINK:  # not a file to read; `mlops build` refuses it at plan time
        return f
    path = root / f.path
    if path.is_symlink():
        return TrackedFile(f.path, "120000", git_blob_id(os.fsencode(path.readlink())))
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None  # deleted in the work tree: not part of the image any more
    mode = "100755" if path.stat().st_mode & 0o111 else "100644"
    return TrackedFile(f.path, mode, git_blob_id(content))


def changed_since(root: Path, ref: str, paths: Iterable[str]) -> set[str]:
    """Tracked paths that differ between `ref` and the working tree."""
    if ref.startswith("-") or head_commit(root) is None:
        raise GitError(f"unknown git ref {ref!r}")
    check = _spawn(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    check.communicate()
    if check.returncode != 0:
        raise GitError(f"unknown git ref {ref!r}")
    out = _git(root, "diff", "--name-only", "-z", ref, "--", *paths)
    return {p for p in out.split("\0") if p}


def tracked_folders_with(root: Path, parent: str, name: str) -> list[str]:
    """Folders directly under `parent` whose file `name` is in the index (checked out or not)."""
    out = _git(root, "ls-files", "-s", "-z", "--", f"{parent}/")
    found = {f.path.split("/")[1] for f in _parse_ls_files(out)
             if f.mode != GITLINK and f.path.count("/") == 2 and f.path.endswith(f"/{name}")}
    return sorted(found)


def sparse_checkout(root: Path) -> bool:
    """Whether the work tree is a sparse checkout (some tracked files are not in it)."""
    if not (root / ".git").exists():  # not a checkout: files exported from a commit
        return False
    if not (git_dir(root) / "info" / "sparse-checkout").is_file():
        return False
    proc = _spawn(root, "config", "--bool", "core.sparseCheckout")
    return proc.communicate()[0].strip() == "true"


def has_commit(root: Path, commit: str) -> bool:
    if commit.startswith("-"):
        return False
    check = _spawn(root, "cat-file", "-e", f"{commit}^{{commit}}")
    check.communicate()
    return check.returncode == 0


def tree_files(root: Path, commit: str, paths: Sequence[str]) -> list[str]:
    """Files under `paths` at `commit` (none for paths it does not have)."""
    out = _git(root, "ls-tree", "-r", "-z", "--name-only", commit, "--", *paths)
    return [p for p in out.split("\0") if p]


def export_tree(root: Path, commit: str, files: Sequence[str], dest: Path) -> None:
    """Write `files` as they were at `commit` into `dest`.

    Unpacked with tarfile's "data" filter, so no member can land outside `dest`.
    """
    if not files:
        return
    proc = subprocess.run(["git", "archive", "--format=tar", commit, "--", *files],
                          cwd=root, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        raise GitError(f"git archive failed: {_first_line(err) or proc.returncode}")
    import tarfile  # only exports need it

    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, filter="data")


def link_texts(root: Path, links: Sequence[TrackedFile], dirty: frozenset[str]) -> dict[str, str]:
    """What each symlink entry points to, as hashed: the work tree's link for a dirty
    entry (folded in by `tree_state`), else the index's blob, never a newer work tree."""
    texts = {}
    for f in links:
        if f.path in dirty:
            text = os.fsencode((root / f.path).readlink())
            if git_blob_id(text) != f.blob:
                raise GitError(f"{f.path} changed while mlops read it; run again")
            texts[f.path] = os.fsdecode(text)
    clean = [f for f in links if f.path not in texts]
    for f, data in zip(clean, blob_contents(root, [f.blob for f in clean]), strict=True):
        texts[f.path] = os.fsdecode(data)
    return texts


def blob_contents(root: Path, blobs: Sequence[str]) -> Generator[bytes, None, None]:
    """The bytes of each blob, in order, from one `git cat-file --batch`.

    One request at a time: git flushes after each object, so neither pipe can
    fill up while the other waits, and only one blob is in memory at once.
    """
    if not blobs:
        return
    proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=root, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for blob in blobs:
            proc.stdin.write(blob.encode() + b"\n")
            proc.stdin.flush()
            yield _read_object(proc.stdout, blob)
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()


def _read_object(out: IO[bytes], blob: str) -> bytes:
    header = out.readline().split()
    if len(header) != 3 or header[1] != b"blob":
        raise GitError(f"git has no blob {blob} (the index names it); run `git status`")
    size = int(header[2])
    data = out.read(size + 1)  # the object and git's newline after it
    if len(data) != size + 1:
        raise GitError(f"git cat-file ended inside blob {blob}")
    return data[:size]


def remote_url_of(root: Path, remote: str) -> str | None:
    """The fetch URL of `remote`, or None when there is no such remote (read only)."""
    proc = _spawn(root, "config", "--get", f"remote.{remote}.url")
    out, _ = proc.communicate()
    return out.strip() or None


def remote_url(root: Path, remote: str) -> str:
    """The fetch URL of `remote`, usable from any directory; a one-line error when there
    is no such remote."""
    url = remote_url_of(root, remote)
    if url is None:
        raise GitError(f"{root}: no git remote named {remote!r}")
    return local_path_from(root, url)


def local_path_from(root: Path, url: str) -> str:
    """`url`, or when it is a relative path (`../remote.git`) that path from `root`.

    git reads a relative path remote from the top of the work tree; a workspace clones
    it from a temporary directory, where it would name nothing. A URL has a scheme, and
    scp-like `host:path` a ':' before any '/'; anything else is a path."""
    if "://" in url or ":" in url.split("/", 1)[0] or Path(url).is_absolute():
        return url
    return str((root / url).resolve())


def commit_time(root: Path, commit: str) -> int | None:
    """The committer time of `commit`, in seconds since the epoch; None when its committer
    wrote a date git cannot print or a 64-bit number cannot hold."""
    return logformat.seconds_of(_git(root, "show", "-s", "--format=%ct", commit, "--").strip())


# -- running git ----------------------------------------------------------


def _spawn(cwd: Path, *args: str) -> subprocess.Popen[str]:
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
            env=literal_paths(),
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None


def literal_paths() -> dict[str, str]:
    """The environment for git: paths after `--` are paths, never pathspec magic (a
    configured path such as `:!*` would otherwise exclude what it names)."""
    return {**os.environ, "GIT_LITERAL_PATHSPECS": "1"}


def _finish(proc: subprocess.Popen[str], what: str) -> str:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise GitError(f"git {what} failed: {_first_line(err) or proc.returncode}")
    return out


def _git(cwd: Path, *args: str) -> str:
    return _finish(_spawn(cwd, *args), args[0])


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# -- a new repository (`mlops init`) ------------------------------------------

INIT_FALLBACK_IDENTITY = ("mlops", "mlops@localhost")


def branch_name_problem(name: str) -> str | None:
    """Why git would refuse `name` as a branch, or None when it is fine."""
    proc = _spawn(Path("/"), "check-ref-format", "--branch", name)  # needs no repository
    proc.communicate()
    return None if proc.returncode == 0 and not name.startswith("-") else "not a valid branch name"


def init_repository(root: Path, branch: str, message: str) -> tuple[str, bool]:
    """`git init -b BRANCH`, add every file, one commit: (its sha, whether the fallback
    identity made it, because git knows no user.name/user.email here)."""
    _git(root, "init", "-q", "-b", branch)
    _git(root, "add", "-A")
    # useConfigOnly: an identity git would only guess from the host name does not count.
    fallback = not all(_succeeds(root, "-c", "user.useConfigOnly=true", "var", ident)
                       for ident in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"))
    name, email = INIT_FALLBACK_IDENTITY
    who = ["-c", f"user.name={name}", "-c", f"user.email={email}"] if fallback else []
    _finish(_spawn(root, *who, "commit", "-q", "--no-verify", "-m", message), "commit")
    return _git(root, "rev-parse", "HEAD").strip(), fallback


def _succeeds(cwd: Path, *args: str) -> bool:
    proc = _spawn(cwd, *args)
    proc.communicate()
    return proc.returncode == 0
