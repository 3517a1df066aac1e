"""Per-clone caches in the git dir (so they need no .gitignore).

- `DigestCache`: input hashes known to be in the registry. Only `--dry-run`
  trusts it, so that a no-op plan needs no network; a real build always asks
  the registry.
- `ParseCache`: the validated content of `mlops.yaml` and each
  `component.yaml`, keyed by the file's git blob id, so a no-op plan over
  hundreds of components parses no YAML. Commands other than the build keep
  only `mlops.yaml` in a small one of their own (`CONFIG_CACHE`).
A missing or corrupt cache file only costs the work it would have saved.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mlops import __version__
from mlops.atomicfile import write_json_atomic

DIGEST_CACHE = "mlops/build-cache.json"
PARSE_CACHE = "mlops/parse-cache.json"
CONFIG_CACHE = "mlops/config-cache.json"  # mlops.yaml alone, for the other commands


class JsonCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] = self._read()
        self._dirty = False
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        import json  # here, as hashlib below: a dry run answered from its memo needs neither

        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> Any:
        return self._data.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            if self._data.get(key) != value:
                self._data[key] = value
                self._dirty = True

    def save(self) -> None:
        with self._lock:
            if self._dirty:
                write_json_atomic(self.path, self._data)
                self._dirty = False


class DigestCache(JsonCache):
    def digest(self, image: str, tag: str) -> str | None:
        value = self.get(f"{image}:{tag}")
        return value if isinstance(value, str) else None

    def remember(self, image: str, tag: str, digest: str) -> None:
        self.put(f"{image}:{tag}", digest)


class ParseCache(JsonCache):
    @staticmethod
    def key(name: str, blob_id: str) -> str:
        """One key per (mlops version, file, content as a git blob id)."""
        import hashlib

        return hashlib.sha256(f"{__version__}\0{name}\0{blob_id}".encode()).hexdigest()
