"""Whole-file writes: a reader sees the old file or the whole new one, never half.

Plain file I/O with no internal imports, so that the lower layers (the
per-clone caches under `config`) can write atomically without importing
`output`, which belongs to the command layer.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, document: dict[str, Any], exclusive: bool = False) -> None:
    """Write `document` so readers see the old file or the whole new one, never half
    (`exclusive`: only if there is no file yet, see `write_text_atomic`)."""
    import json  # here: a dry run answered from its memo writes no JSON

    write_text_atomic(path, json.dumps(document, indent=2) + "\n", exclusive)


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """`write_text_atomic`, for bytes; `durable=False` skips the fsync, for a file a
    crash may lose (a cache that is planned over)."""
    _write_atomic(path, data, False, durable)


def write_text_atomic(path: Path, text: str, exclusive: bool = False) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it.

    `exclusive`: link it into place instead, which fails with FileExistsError when
    `path` exists, so that of two writers racing for a new file one wins and the
    other learns it (a rename would silently replace the first).
    """
    _write_atomic(path, text, exclusive, True)


def _write_atomic(path: Path, data: str | bytes, exclusive: bool, durable: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:  # named by the file asked for, not the temp file beside it
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            with contextlib.suppress(OSError):  # a filesystem without modes keeps its own
                os.fchmod(fh.fileno(), mode)  # mkstemp's 0600 would replace the file's mode
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        _put_in_place(tmp, path, exclusive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _put_in_place(tmp: str, path: Path, exclusive: bool) -> None:
    """Rename or link the temp file to `path`. A failure (`path` is a directory) names
    `path`: the OSError names the temp file first, and that is what a user would read."""
    try:
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    except OSError as exc:  # keeps its class: a FileExistsError stays one for the caller
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    if exclusive:
        Path(tmp).unlink()


def _mode_for(path: Path) -> int:
    """The file's mode now, or what a plain `open` would give a new file (0666 less the
    umask), so that a rewrite leaves the permissions as they were."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~umask()


def umask() -> int:
    """The process' umask, read from /proc where it can be: os.umask() must set a value
    to return the old one, and a git process forked meanwhile by another thread would
    inherit the one set. Elsewhere (no /proc) it is set and put back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
