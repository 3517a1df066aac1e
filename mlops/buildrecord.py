"""Reading a build record (`mlops build --output FILE`), with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops import safejson
from mlops.errors import ConfigError


def read_build_record(path: Path) -> dict[str, Any]:
    try:
        record = safejson.read(path)
    except safejson.NotFound:
        raise ConfigError(f"{path}: build record not found") from None
    except safejson.JsonProblem as exc:
        raise ConfigError(f"{path}: not a readable JSON build record ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("builds"), list):
        raise ConfigError(f"{path}: not a build record (no 'builds' list)")
    return record
