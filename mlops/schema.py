"""A small declarative schema for YAML mappings, with located errors.

Each config section declares its keys once, with a checker and a doc string.
The same declaration validates files, suggests the nearest key for a typo and
feeds the `mlops.yaml` reference in the docs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from mlops import names
from mlops.adapters.yamlio import Located, line_of
from mlops.errors import ConfigError
from mlops.records import dataclass

Checker = Callable[[Any, str], Any]


@dataclass(frozen=True)
class Key:
    check: Checker
    doc: str
    default: Any = None
    required: bool = False


def read_section(doc: Located, node: Any, keys: Mapping[str, Key], what: str,
                 where: str | None = None) -> dict[str, Any]:
    """Check `node` against `keys` and return plain, defaulted values. `where` is the
    `file:line` of the key that holds `node`: a scalar there carries no line of its own,
    and would be reported at line 1."""
    if not isinstance(node, Mapping):
        raise ConfigError(f"{where or doc.where(node)}: {what} must be a mapping")
    _refuse_unknown(doc, node, keys, what)
    values: dict[str, Any] = {}
    for name, key in keys.items():
        if name in node:
            values[name] = key.check(node[name], f"{doc.where(node, name)}: {name}")
        elif key.required:
            raise ConfigError(f"{doc.where(node)}: {what} is missing required key {name!r}")
        else:
            values[name] = key.default
    return values


def _refuse_unknown(doc: Located, node: Mapping, keys: Mapping[str, Key], what: str) -> None:
    for name in node:
        if name in keys:
            continue
        import difflib  # only for the error: a valid file never loads it

        hint = difflib.get_close_matches(str(name), list(keys), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        valid = ", ".join(keys)
        raise ConfigError(
            f"{doc.path}:{line_of(node, name)}: unknown key {name!r} in {what}"
            f"{suggestion} (valid: {valid})"
        )


# -- checkers: each takes (value, "file:line: key") and returns the clean value


def string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string")
    return str(value)


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false")
    return value


def positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} must be a whole number of at least 1")
    return int(value)


def string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return tuple(str(v) for v in value)


def string_map(value: Any, where: str) -> dict[str, str]:
    """A mapping of names to scalars; numbers and booleans become strings."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of names to values")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or isinstance(v, Mapping | list) or v is None:
            raise ConfigError(f"{where} must map names to plain values (bad entry {k!r})")
        out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def command(value: Any, where: str) -> tuple[str, ...]:
    """A command as a list of arguments, or a string split like a shell would."""
    import shlex

    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"{where} cannot be split into arguments: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        argv = [str(v) for v in value]
    else:
        raise ConfigError(f"{where} must be a list of arguments or a string")
    if not argv:
        raise ConfigError(f"{where} must not be empty")
    return tuple(argv)


def build_args(value: Any, where: str) -> dict[str, str]:
    args = string_map(value, where)
    for key in args:
        if not names.BUILD_ARG.match(key):
            raise ConfigError(f"{where}: {key!r} is not a valid build arg name")
    return args


def semver(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, str | int | float) else ""
    if not isinstance(value, str) or not names.SEMVER.match(text):
        raise ConfigError(f"{where} must be a semantic version like 1.2.3, got {value!r}")
    return text


def repo_path(value: Any, where: str) -> str:
    problem = names.repo_path_problem(value)
    if problem:
        raise ConfigError(f"{where} {problem}")
    return names.normalize_repo_path(value)


def repo_paths(value: Any, where: str) -> tuple[str, ...]:
    return tuple(repo_path(v, where) for v in string_list(value, where))


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: Any, where: str) -> float:
    """'90s', '15m', '2h', '1d' (or a number of seconds) -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise ConfigError(f"{where} must be a duration like 30s, 15m, 2h or 1d, got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def finite_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number")
    return float(value)
