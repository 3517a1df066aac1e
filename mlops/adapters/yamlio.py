"""Reading config YAML with line numbers: the only user of ruamel.yaml.

Config files are loaded with the round-trip loader because it records the
line of every key, which lets errors read `file:line: problem`. It builds no
arbitrary objects, so it is as safe as a safe loader. Aliases are refused
outright: config never needs them and they are the billion-laughs vector.

A plain scalar that looks like a date stays a string: no config value is a
date, and `2026-02-30` in a build arg is text, not a broken calendar day. A
value the constructor still cannot build (`!!int abc`, an integer past
Python's 4300-digit limit) is a located error like any other.
"""

from __future__ import annotations

import functools
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
    yaml.Resolver = _dateless_resolver()
    yaml.Constructor = _checked_constructor()
    try:
        _refuse_aliases(yaml, text, name)
        return yaml.load(text)
    except MarkedYAMLError as exc:
        raise ConfigError(_marked_message(exc, name)) from None
    except YAMLError as exc:
        raise ConfigError(f"{name}:1: invalid YAML: {_first_line(str(exc))}") from None
    except VALUE_ERRORS as exc:  # raised outside any one node's construction: no line known
        raise ConfigError(f"{name}:1: invalid YAML: {_first_line(str(exc))}") from None


TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# What the SDK's constructors raise, not wrapped in their YAMLError, when a
# scalar's text does not make the value its tag names: int("abc") is a
# ValueError, a regex miss on `!!timestamp abc` an AttributeError, `!!bool maybe`
# a KeyError. The depth limit below keeps RecursionError out of ruamel; PyYAML's
# loader has no depth limit.
VALUE_ERRORS = (ValueError, OverflowError, AttributeError, TypeError, LookupError,
                RecursionError)


def value_problem(tag: object, value: object, exc: BaseException) -> str:
    """`value '...' is not a valid !!int (why)`: the one wording for both YAML adapters."""
    tag_name = str(getattr(tag, "value", tag) or "").replace("tag:yaml.org,2002:", "!!")
    text = value if isinstance(value, str) else ""
    shown = text if len(text) <= 40 else text[:37] + "..."  # a 5000-digit int is one line too
    why = str(exc).split(";")[0]  # drops "use sys.set_int_max_str_digits()": not the user's knob
    detail = f" ({_first_line(why)})" if isinstance(exc, ValueError | OverflowError) else ""
    return f"value {shown!r} is not a valid {tag_name or 'value'}{detail}"


@functools.cache
def _dateless_resolver() -> type:
    """ruamel's resolver without implicit timestamps (a quoted or plain date stays a str)."""
    from ruamel.yaml.resolver import VersionedResolver

    class DatelessResolver(VersionedResolver):  # type: ignore[misc]
        def add_version_implicit_resolver(self, version: Any, tag: Any, regexp: Any,
                                          first: Any) -> None:
            if tag != TIMESTAMP_TAG:
                super().add_version_implicit_resolver(version, tag, regexp, first)

    return DatelessResolver


@functools.cache
def _checked_constructor() -> type:
    """The round-trip constructor, with a bad scalar reported at its own line."""
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
    from ruamel.yaml.error import YAMLError

    class CheckedConstructor(RoundTripConstructor):  # type: ignore[misc]
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except YAMLError:
                raise
            except VALUE_ERRORS as exc:  # the innermost node's call sees it first
                raise ConstructorError(problem=value_problem(node.tag, node.value, exc),
                                       problem_mark=node.start_mark) from None

    return CheckedConstructor


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

