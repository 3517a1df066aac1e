"""`json.dumps(document, indent=2)`, byte for byte, in well under half the time.

Every `--json` result is printed indented. Python 3.11's C encoder cannot indent,
so the standard library falls back to a generator per container (6.9 ms for the
500 entries of `mlops history --json --limit 500`). This writes the plain
types (dict with string keys, list, tuple, str, int, float, bool, None)
directly; anything else, or a float that is not finite, goes to `json.dumps`,
which also raises what it raises.

A list's items are written together where they can be (`_items`): scalars by
the C encoder in one call, and records (dicts with the same keys in the same
order, as a command's entries are) key by key, each record then filled into one
template by `%`. A history of 500 entries took 4.0 ms one value at a time, and
2.8 ms so (with each container made by one join of its pieces).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

# json's own C encoder (None without CPython's _json): not in typeshed's json.encoder
from json.encoder import c_make_encoder as _make_encoder  # type: ignore[attr-defined]
from json.encoder import encode_basestring_ascii as _string
from operator import itemgetter
from typing import Any


class _NotPlain(Exception):
    pass


def dumps(document: Any, written: Mapping[str, str] | None = None) -> str:
    """`written`: the text of some values of `document`, a dict, by key, as `dumps`
    writes them there (see `items` and `list_of`); they must be what it holds."""
    try:
        if written and type(document) is dict:
            return _top(document, written)
        return _value(document, "\n")
    except (_NotPlain, RecursionError):
        return json.dumps(document, indent=2)


def items(values: Sequence[Any], depth: int) -> list[str]:
    """Each of `values` as `dumps` writes it as an item of a list `depth` containers
    down, for `list_of`: a command may write its entries a few dozen at a time, as
    they come, while it waits on something else."""
    newline = "\n" + "  " * (depth + 1)
    try:
        return _items(values, newline)
    except (_NotPlain, RecursionError):
        # ensure_ascii leaves no line break in a string: each one json.dumps writes
        # starts a line, indented the depth more there
        return [json.dumps(value, indent=2).replace("\n", newline) for value in values]


def list_of(written: list[str], depth: int) -> str:
    """The list `dumps` writes `depth` containers down, its items written by `items`."""
    if not written:
        return "[]"
    inner = "\n" + "  " * (depth + 1)
    return "[" + inner + ("," + inner).join(written) + inner[:-2] + "]"


def _top(document: dict[Any, Any], written: Mapping[str, str]) -> str:
    """`_dict` of a document, its `written` values as they are."""
    if not document:
        return "{}"
    pieces = ["{\n  "]
    for key, item in document.items():
        if type(key) is not str:
            raise _NotPlain
        text = written[key] if key in written else _value(item, "\n  ")
        pieces += (_string(key), ": ", text, ",\n  ")
    pieces[-1] = "\n}"
    return "".join(pieces)


def _value(value: Any, newline: str) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is dict:
        return _dict(value, newline)
    if kind is list or kind is tuple:
        return _list(value, newline)
    raise _NotPlain


# A container's text is made by one join of its pieces: a list of hundreds of entries
# is a few hundred kilobytes, and each `+` onto it was a copy, in fresh pages.


def _dict(value: dict[Any, Any], newline: str) -> str:
    if not value:
        return "{}"
    inner = newline + "  "
    pieces = ["{" + inner]
    for key, item in value.items():
        if type(key) is not str:
            raise _NotPlain  # json.dumps turns numbers and booleans into keys its own way
        pieces += (_string(key), ": ", _value(item, inner), "," + inner)
    pieces[-1] = newline + "}"
    return "".join(pieces)


def _list(value: list[Any] | tuple[Any, ...], newline: str) -> str:
    if not value:
        return "[]"
    inner = newline + "  "
    items = _items(value, inner)  # a new list: its ends take the brackets
    items[0] = "[" + inner + items[0]
    items[-1] += newline + "]"
    return ("," + inner).join(items)


# Exactly these types (a subclass may print otherwise). The C encoder writes a float
# as json.dumps does, NaN and infinities included.
_SCALARS = frozenset((str, int, float, bool, type(None)))
_DICTS = frozenset((dict,))
_STRINGS = frozenset((str,))
_TOGETHER = 4  # fewer items than this: one at a time costs less than the set-up


def _refuse(value: Any) -> Any:
    raise _NotPlain  # never called: only the types of _SCALARS reach _LINES


# The C encoder with a line break between items: no item it writes holds one (ensure_ascii
# escapes them in strings), so splitting its text there gives each item's.
_LINES = None if _make_encoder is None else _make_encoder(
    None, _refuse, _string, None, ": ", "\n", False, False, True)


def _items(values: Sequence[Any], newline: str) -> list[str]:
    """Each of `values` as `_value(item, newline)` writes it."""
    if len(values) >= _TOGETHER:
        if _LINES is not None and _SCALARS.issuperset(map(type, values)):
            return "".join(_LINES(values, 0))[1:-1].split("\n")
        keys = _record_keys(values)
        if keys is not None:
            return _records(values, keys, newline)
    return [_value(item, newline) for item in values]


def _record_keys(values: Sequence[Any]) -> tuple[str, ...] | None:
    """The keys every item holds, in the same order, when each is a dict; else None."""
    if not _DICTS.issuperset(map(type, values)):
        return None
    keys = tuple(values[0])
    if not (_STRINGS.issuperset(map(type, keys)) and all(map(keys.__eq__, map(tuple, values)))):
        return None
    return keys


def _records(values: Sequence[dict[str, Any]], keys: tuple[str, ...],
             newline: str) -> list[str]:
    """Dicts with these `keys` in this order: each key's values written together, then
    each dict's into the one template."""
    if not keys:
        return ["{}"] * len(values)
    inner = newline + "  "
    pick = itemgetter(*keys)  # a tuple of values, but for one key the value itself
    rows = map(pick, values) if len(keys) > 1 else zip(map(pick, values), strict=True)
    columns = [_items(column, inner) for column in zip(*rows, strict=True)]
    template = "{" + inner + ("," + inner).join(
        (_string(key) + ": ").replace("%", "%%") + "%s" for key in keys) + newline + "}"
    return list(map(template.__mod__, zip(*columns, strict=True)))
