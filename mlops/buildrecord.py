"""The build record (`mlops build --output FILE`): one type, one reader, one writer.

    {"source_commit": ..., "registry": ..., "builds": [{"component", "version",
     "image", "tags", "digest", "input_hash", "built", "pushed", "status", ...}]}

A record may come from another job (a CI artifact), so `read` checks only its
shape here, in one place, with one-line errors; what each use needs of the
entries (a digest for every component to promote, a component name to
compile against) is checked where it is used, and the path it came from
travels with it for those messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops import safejson
from mlops.errors import ConfigError, MlopsError
from mlops.records import dataclass


@dataclass(frozen=True)
class BuildRecord:
    source_commit: Any  # as written: promotion checks that it is a commit id
    builds: tuple[Any, ...]  # the entries as written, in order
    registry: Any = None
    path: str = ""  # where it was read from, for messages; "" for one made in this process

    @classmethod
    def parse(cls, data: Any, path: str) -> BuildRecord:
        if not isinstance(data, dict) or not isinstance(data.get("builds"), list):
            raise ConfigError(f"{path}: not a build record (no 'builds' list)")
        return cls(data.get("source_commit"), tuple(data["builds"]), data.get("registry"), path)

    @classmethod
    def of(cls, registry: str, commit: str | None,
           entries: Sequence[Mapping[str, Any]]) -> BuildRecord:
        return cls(commit, tuple(dict(e) for e in entries), registry)

    def entries(self) -> list[Mapping[str, Any]]:
        """The entries that are mappings; the others are an error to whoever needs them."""
        return [b for b in self.builds if isinstance(b, Mapping)]

    def dump(self) -> dict[str, Any]:
        return {"source_commit": self.source_commit, "registry": self.registry,
                "builds": [dict(b) if isinstance(b, Mapping) else b for b in self.builds]}


def read_build_record(path: Path) -> BuildRecord:
    return BuildRecord.parse(read_document(path, "build record"), str(path))


def read_document(path: Path, what: str, missing: type[MlopsError] = ConfigError) -> Any:
    """A JSON document another job wrote (a build record, a fan-out plan or part), read with
    safejson's limits; `missing` is the error for a file that is not there."""
    try:
        return safejson.read(path)
    except safejson.NotFound:
        raise missing(f"{path}: {what} not found") from None
    except safejson.JsonProblem as exc:
        raise ConfigError(f"{path}: not a readable JSON {what} ({exc})") from None
