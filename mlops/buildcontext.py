"""Build contexts made of exactly the files that feed the input hash.

Sending only tracked files (with working-tree edits) keeps the promise that an
image is a function of its input hash: an untracked file cannot slip into an
image without changing the hash. The tar is deterministic.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from mlops.errors import BuildError
from mlops.inputs import TrackedFile

OUTSIDE_DOCKERFILE = ".mlops.Dockerfile"


def make_context(
    root: Path, context: str, dockerfile: str, files: Iterable[TrackedFile]
) -> tuple[IO[bytes], str]:
    """A tar of the context and the Dockerfile's path inside it."""
    out = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    prefix = "" if context == "." else context.rstrip("/") + "/"
    inside = dockerfile.startswith(prefix)
    with tarfile.open(fileobj=out, mode="w") as tar:
        for f in files:
            if f.path.startswith(prefix):
                _add(tar, root / f.path, f.path[len(prefix) :], f.mode)
        if not inside:
            _add(tar, root / dockerfile, OUTSIDE_DOCKERFILE, "100644")
    out.seek(0)
    return out, (dockerfile[len(prefix) :] if inside else OUTSIDE_DOCKERFILE)


def _add(tar: tarfile.TarFile, path: Path, arcname: str, mode: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if mode == "120000":
        info.type = tarfile.SYMTYPE
        info.linkname = str(path.readlink())
        tar.addfile(info)
        return
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return  # deleted in the work tree since hashing; the hash excluded it too
    except OSError as exc:
        raise BuildError(f"cannot read {arcname}: {exc.strerror}") from None
    info.size = len(data)
    info.mode = 0o755 if mode == "100755" else 0o644
    tar.addfile(info, io.BytesIO(data))
