"""Reading a build record (`mlops build --output FILE`), with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.errors import ConfigError


def read_build_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: build record not found") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable JSON build record ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("builds"), list):
        raise ConfigError(f"{path}: not a build record (no 'builds' list)")
    return record
