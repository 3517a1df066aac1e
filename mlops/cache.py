"""A per-clone cache of input hashes known to be in the registry.

Only `--dry-run` trusts it, so that a no-op plan needs no network; a real build
always asks the registry. It lives in the git dir, so it needs no .gitignore.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops.output import write_json_atomic

CACHE_NAME = "mlops/build-cache.json"


class DigestCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, str]] = self._read()
        self._dirty = False

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # a missing or corrupt cache only costs lookups
        return data if isinstance(data, dict) else {}

    def get(self, image: str, tag: str) -> str | None:
        value = self._data.get(image, {}).get(tag)
        return value if isinstance(value, str) else None

    def put(self, image: str, tag: str, digest: str) -> None:
        if self.get(image, tag) != digest:
            self._data.setdefault(image, {})[tag] = digest
            self._dirty = True

    def save(self) -> None:
        if self._dirty:
            write_json_atomic(self.path, self._data)
            self._dirty = False
