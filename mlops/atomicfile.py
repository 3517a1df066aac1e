"""Whole-file writes: a reader sees the old file or the whole new one, never half.

Plain file I/O with no internal imports, so that the lower layers (the
per-clone caches under `config`) can write atomically without importing
`output`, which belongs to the command layer.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """Write `document` so readers see the old file or the whole new one, never half."""
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
