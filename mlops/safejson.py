"""JSON that mlops reads from users (build records, metrics), with limits that hold.

`json.loads` alone accepts what a careless or hostile file can hold: any size
(`--build /dev/zero` reads until memory runs out), any depth (a RecursionError
traceback, or later walks that recurse), a duplicate key that silently keeps
the last value, and integers of hundreds of digits that overflow on the way
to a float. Each becomes a `JsonProblem` with one line of text, which the
caller turns into its own error class (a metrics file's problems fail a gate).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_BYTES = 16 << 20  # a build record of 1,000 components is well under 1 MiB
MAX_DEPTH = 32
MAX_INT_DIGITS = 64  # longer integers are read as floats (and overflow to inf, failing closed)


class JsonProblem(Exception):
    """Why a document was refused, as one line."""


class NotFound(JsonProblem):
    pass


def read(path: Path, max_bytes: int = MAX_BYTES) -> Any:
    """The parsed document at `path`, or JsonProblem."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # never more, whatever the file is
    except FileNotFoundError:
        raise NotFound("not found") from None
    except OSError as exc:
        raise JsonProblem(f"cannot read: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise JsonProblem(f"larger than the limit of {max_bytes} bytes")
    return loads(raw)


def loads(raw: bytes | str) -> Any:
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates, parse_int=_int)
    except RecursionError:
        raise JsonProblem(f"nested deeper than the limit of {MAX_DEPTH}") from None
    except UnicodeDecodeError as exc:
        raise JsonProblem(f"not UTF-8 text ({exc.reason})") from None
    except ValueError as exc:  # JSONDecodeError, and our duplicate keys
        raise JsonProblem(str(exc)) from None
    if _depth(data) > MAX_DEPTH:
        raise JsonProblem(f"nested deeper than the limit of {MAX_DEPTH}")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else float(text)


def _depth(data: Any) -> int:
    """Nesting depth, without recursion: a deep document must not overflow the check."""
    if not isinstance(data, dict | list):
        return 0
    deepest, stack = 0, [(data, 1)]
    while stack:  # only containers are pushed: a build record is mostly strings
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in
                         (node.values() if isinstance(node, dict) else node)
                         if isinstance(child, dict | list))
    return deepest
