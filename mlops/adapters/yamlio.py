"""Reading config YAML with line numbers: the only user of ruamel.yaml.

Config files are loaded with the round-trip loader because it records the
line of every key, which lets errors read `file:line: problem`. It builds no
arbitrary objects, so it is as safe as a safe loader. Aliases are refused
outright: config never needs them and they are the billion-laughs vector.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.errors import ConfigError

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

# ruamel.yaml is imported inside the functions that parse or dump: a build
# plan answered from caches never needs it, and it costs tens of ms to load.

MAX_CONFIG_BYTES = 1 << 20


class Located:
    """A loaded YAML document plus the file it came from, for error locations."""

    def __init__(self, path: str, data: Any) -> None:
        self.path = path
        self.data = data

    def where(self, container: Any = None, key: Any = None) -> str:
        return f"{self.path}:{line_of(container, key)}"


def line_of(container: Any, key: Any = None) -> int:
    """1-based line of `key` in a loaded mapping or sequence (1 if unknown)."""
    lc = getattr(container, "lc", None)
    if lc is None:
        return 1
    try:
        if key is None:
            return int(lc.line) + 1
        if isinstance(container, Mapping):
            return int(lc.key(key)[0]) + 1
        if isinstance(container, list):
            return int(lc.item(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    return int(lc.line) + 1


def load_file(path: Path, display: str | None = None) -> Located:
    """Load one YAML file, reporting every problem as `file:line: message`."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None
    return Located(name, loads(raw, name))


def loads(raw: bytes | str, name: str) -> Any:
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: file is larger than {MAX_CONFIG_BYTES} bytes")
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}:1: not UTF-8 text ({exc.reason})") from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        _refuse_aliases(yaml, text, name)
        return yaml.load(text)
    except MarkedYAMLError as exc:
        raise ConfigError(_marked_message(exc, name)) from None
    except YAMLError as exc:
        raise ConfigError(f"{name}:1: invalid YAML: {_first_line(str(exc))}") from None


MAX_DEPTH = 64  # far past any real config; ruamel's composer recurses, so a deep file
# took a minute and then failed with RecursionError. Events come one by one, so
# the scan stops at the limit without reading the rest.


def _refuse_aliases(yaml: YAML, text: str, name: str) -> None:
    """Refuse aliases (billion laughs) and nesting past MAX_DEPTH, in one event scan."""
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

    depth = 0
    for event in yaml.parse(io.StringIO(text)):
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, AliasEvent):
            raise ConfigError(f"{name}:{line}: YAML anchors and aliases are not allowed")
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{name}:{line}: nested deeper than the limit of {MAX_DEPTH}")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _marked_message(exc: MarkedYAMLError, name: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = exc.problem or exc.context or "invalid YAML"
    if "duplicate key" in str(exc).lower():
        problem = _duplicate_key_problem(exc)
    return f"{name}:{line}: invalid YAML: {_first_line(problem)}"


def _duplicate_key_problem(exc: MarkedYAMLError) -> str:
    text = str(exc.problem or "")
    return text if "duplicate" in text else "duplicate key"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid YAML"

