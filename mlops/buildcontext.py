"""Build contexts made of exactly the content that the input hash covers.

A clean file's bytes come from git's object store, by the blob id that was
hashed, never from the work tree: a file marked `--assume-unchanged` or
`--skip-worktree` (or left out of a sparse checkout) and then edited is built
as git has it, so an image is always the content its `ih-` tag names. A dirty
file (an edit the hash includes, see `gitops.tree_state`) is read from the
work tree and checked against the blob id it was hashed as, so an edit made
between planning and building fails the build instead of slipping in.

Only tracked files go in: an untracked file cannot reach an image without
changing the hash. Symlinks arrive resolved (`mlops.links`): the context holds
their targets' content. The tar is deterministic.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from mlops.adapters import gitops
from mlops.errors import BuildError
from mlops.tracked import git_blob_id

if TYPE_CHECKING:
    import tarfile

OUTSIDE_DOCKERFILE = ".mlops.Dockerfile"
GITLINK_MODE = "160000"


class ContextFile(NamedTuple):
    """One file of a context: its path there (repo-relative), mode, hashed blob id, and
    the work-tree path to read when the hash took it from the work tree (else None)."""

    path: str
    mode: str
    blob: str
    worktree: str | None = None


def make_context(
    root: Path, context: str, dockerfile: str, files: Iterable[ContextFile]
) -> tuple[IO[bytes], str]:
    """A tar of the context and the Dockerfile's path inside it.

    `files` holds the context's files and, when it lies outside the context,
    the Dockerfile's own entry.
    """
    prefix = "" if context == "." else context.rstrip("/") + "/"
    inside = dockerfile.startswith(prefix)
    members = [(f, f.path[len(prefix):]) for f in files if f.path.startswith(prefix)]
    if not inside:
        members += [(f, OUTSIDE_DOCKERFILE) for f in files if f.path == dockerfile]
    if not any(f.path == dockerfile for f, _ in members):
        raise BuildError(f"{dockerfile} is not among the files mlops hashed")
    import tarfile  # only a build writes a context: a plan never loads it

    out = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with tarfile.open(fileobj=out, mode="w") as tar:
        for (f, arcname), data in zip(members, _contents(root, [f for f, _ in members]),
                                      strict=True):
            _add(tar, arcname, f.mode, data)
    out.seek(0)
    return out, (dockerfile[len(prefix):] if inside else OUTSIDE_DOCKERFILE)


def _contents(root: Path, files: Sequence[ContextFile]) -> Iterator[bytes]:
    """Each file's bytes, as hashed, one at a time: clean ones from one `git cat-file` run."""
    for f in files:
        if f.mode == GITLINK_MODE:
            raise BuildError(f"{f.path} is a git submodule; mlops builds tracked files only")
    from_git = gitops.blob_contents(root, [f.blob for f in files if f.worktree is None])
    for f in files:
        yield next(from_git) if f.worktree is None else _from_worktree(root, f)
    from_git.close()


def _from_worktree(root: Path, f: ContextFile) -> bytes:
    assert f.worktree is not None
    try:
        data = (root / f.worktree).read_bytes()
    except OSError as exc:
        raise BuildError(f"cannot read {f.worktree}: {exc.strerror}") from None
    if git_blob_id(data) != f.blob:
        raise BuildError(f"{f.worktree} changed after mlops hashed it; run the build again")
    return data


def _add(tar: tarfile.TarFile, arcname: str, mode: str, data: bytes) -> None:
    info = tar.tarinfo(arcname)  # TarInfo, without importing tarfile for a plan
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.size = len(data)
    info.mode = 0o755 if mode == "100755" else 0o644
    tar.addfile(info, io.BytesIO(data))
