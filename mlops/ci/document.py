"""What every CI reporter reads from a command's result document (its --json output)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def failed(document: Mapping[str, Any]) -> bool:
    """Whether a result document reports a failure (the command may still exit 0)."""
    return document.get("ok") is False or document.get("result") in ("fail", "inconclusive") \
        or "aborted" in document
