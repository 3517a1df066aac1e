"""The only importer of PyYAML: strict loads, tool-output loads, and the dumps mlops writes.

Kustomizations (edited by line) and `release.yaml` records are read with
PyYAML, which is fast but accepts two things silently. An alias is the
billion-laughs vector: a few hundred bytes that expand to gigabytes as soon
as anything walks or prints the value. A duplicate key keeps one of two
values without a word (kustomize itself refuses the file). Both are refused
here with `file:line`, as `yamlio` does for the config files.

YAML that a tool wrote (kfp, `kubectl kustomize`, a CRD bundle) is loaded
without those scans, and every file mlops renders is dumped here, so the
loader and dumper settings that golden files depend on live in one place.

The checked loads read a plain date-like scalar as a string (no record holds
a date), and report a scalar the constructor cannot build (`!!int abc`, an
integer past Python's 4300-digit limit) at its line, as `yamlio` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from mlops.adapters.yamlio import TIMESTAMP_TAG, VALUE_ERRORS, value_problem
from mlops.errors import ConfigError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _dateless(base: type) -> type:
    """`base` minus implicit dates: a plain `2026-02-30` is text."""

    class DatelessLoader(base):  # type: ignore[valid-type,misc]
        yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in pairs if tag != TIMESTAMP_TAG]
            for first, pairs in base.yaml_implicit_resolvers.items()  # type: ignore[attr-defined]
        }

    return DatelessLoader


def _locating(base: type) -> type:
    """`base`, reporting a scalar it cannot build at the scalar's line. A Python call per
    node (5 ms in a promotion): used only to say where, once construction failed."""

    class LocatingLoader(base):  # type: ignore[valid-type,misc]
        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except yaml.YAMLError:
                raise
            except VALUE_ERRORS as exc:  # the innermost node's call sees it first
                raise yaml.constructor.ConstructorError(
                    None, None, value_problem(node.tag, node.value, exc), node.start_mark) from None

    return LocatingLoader


# Bound in one expression each with the safe loader they extend, which
# tests/test_source_rules.py reads.
_CheckedLoader = _dateless(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_LocatingLoader = _locating(_dateless(getattr(yaml, "CSafeLoader", yaml.SafeLoader)))

# The composed tree's node classes, for the modules that edit YAML by line.
Node = yaml.Node
MappingNode = yaml.MappingNode
ScalarNode = yaml.ScalarNode
SequenceNode = yaml.SequenceNode
# What PyYAML raises, also from inside SDKs that parse with it (kubernetes reading a kubeconfig).
YAMLError = yaml.YAMLError


def read_text(path: Path, display: str) -> str:
    """The file's text; not-UTF-8 bytes are a located error (FileNotFoundError passes)."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display}:1: not UTF-8 text ({exc.reason})") from None


def compose(text: str, display: str) -> yaml.Node | None:
    """The document's node tree, with aliases and duplicate keys refused."""
    try:
        _scan(text, display)
        node = yaml.compose(text, Loader=_CheckedLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    _refuse_duplicate_keys(node, display)
    return node


def compose_all(text: str, display: str) -> list[yaml.Node]:
    """Every document's node tree (multi-document files), with the same refusals."""
    try:
        _scan(text, display)
        nodes = [n for n in yaml.compose_all(text, Loader=_CheckedLoader) if n is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    for node in nodes:
        _refuse_duplicate_keys(node, display)
    return nodes


def load_all(text: str, display: str) -> list[Any]:
    """Every document as plain data."""
    return _construct(compose_all(text, display), display)


def load(text: str, display: str) -> Any:
    """The document as plain data (dicts, lists, scalars), or a located one-line error."""
    return construct(compose(text, display), display)


def construct(node: yaml.Node | None, display: str) -> Any:
    """A tree from `compose` as plain data: for a caller that needs both."""
    if node is None:
        return None
    return _construct([node], display)[0]


def _construct(nodes: list[yaml.Node], display: str) -> list[Any]:
    plain = _plain_documents(nodes)
    if plain is not None:
        return plain
    try:
        return _construct_with(_CheckedLoader, nodes)
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    except VALUE_ERRORS:
        pass  # built again below, by a loader that says where
    try:
        _construct_with(_LocatingLoader, nodes)
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    except VALUE_ERRORS as exc:  # raised outside any one node's construction: no line known
        raise ConfigError(f"{display}:1: invalid YAML: {_first_line(exc)}") from None
    raise AssertionError("construction failed once, then not")  # pragma: no cover


def _construct_with(loader_class: type, nodes: list[yaml.Node]) -> list[Any]:
    loader = loader_class("")
    try:
        return [loader.construct_document(n) for n in nodes]
    finally:
        loader.dispose()


_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _TAG + "str", _TAG + "map", _TAG + "seq"
# Scalars whose constructor returns the value outright (no generator, no state):
# PyYAML's own constructor builds them, only their dispatch through it is skipped.
_SCALAR_TAGS = frozenset(_TAG + t for t in ("null", "bool", "int", "float"))


class _NotPlain(Exception):
    """A node the plain walk leaves to PyYAML's constructor."""


def _plain_documents(nodes: list[yaml.Node]) -> list[Any] | None:
    """The documents as PyYAML's safe constructor builds them, or None to let it build them.

    Its generic dispatch (a Python call per node, generators for every mapping,
    bookkeeping for aliases, which `_scan` has refused) costs 0.2 ms for each
    image of a 1,000-image overlay, read twice a promotion. This walk handles
    what overlays and records hold: mappings, sequences, strings, and the
    null/bool/int/float scalars, whose constructor it calls itself. A merge key,
    any other tag, a non-scalar key, or a value its constructor refuses, and the
    whole document goes to PyYAML instead, which builds it or words the error.
    tests/adapters/test_safeyaml_load.py compares the two on generated documents.
    """
    loader = _CheckedLoader("")
    scalar = loader.yaml_constructors  # tag -> SafeConstructor's function
    try:
        return [_plain(n, loader, scalar) for n in nodes]
    except (_NotPlain, yaml.YAMLError, *VALUE_ERRORS):
        return None
    finally:
        loader.dispose()


def _plain(node: yaml.Node, loader: Any, scalar: dict) -> Any:
    tag = node.tag
    if tag == _STR and type(node) is yaml.ScalarNode:
        return node.value
    if tag == _MAP and type(node) is yaml.MappingNode:
        out = {}
        for key, value in node.value:
            if type(key) is not yaml.ScalarNode or key.tag not in _KEY_TAGS:
                raise _NotPlain  # `<<` merges, `=` values, complex keys
            out[_plain(key, loader, scalar)] = _plain(value, loader, scalar)
        return out
    if tag == _SEQ and type(node) is yaml.SequenceNode:
        return [_plain(item, loader, scalar) for item in node.value]
    if tag in _SCALAR_TAGS and type(node) is yaml.ScalarNode:
        return scalar[tag](loader, node)
    raise _NotPlain


_KEY_TAGS = _SCALAR_TAGS | {_STR}


def unchecked_load_all(text: str) -> list[Any]:
    """Every document of a tool's output, with libyaml's safe loader and no scans.

    For megabytes of machine-written YAML (CRD bundles, `kubectl kustomize`):
    the pure-Python loader took a third of a promotion on compiled pipelines.
    YAMLError passes to the caller, which words it (a value the constructor cannot
    build becomes one too).
    """
    return _as_yaml_errors(lambda: list(yaml.load_all(text, Loader=_Loader)))


def pure_load_all(text: str) -> list[Any]:
    """Every document, with PyYAML's pure-Python safe loader (`yaml.safe_load_all`), no scans.

    Kept apart from `unchecked_load_all` because the two loaders word some
    errors differently, and callers quote the wording in their messages.
    """
    return _as_yaml_errors(lambda: list(yaml.safe_load_all(text)))


def _as_yaml_errors(load: Callable[[], list[Any]]) -> list[Any]:
    """A file a person can edit (a compiled pipeline, the Applications) may hold
    `!!int abc`: its ValueError reaches the caller as the YAMLError it handles."""
    try:
        return load()
    except VALUE_ERRORS as exc:
        raise yaml.YAMLError(f"invalid value: {_first_line(exc)}") from None


def dump(data: Any, *, sort_keys: bool = False, width: int = 4096) -> str:
    """One document in block style, keys in the order given, long lines unfolded.

    The bytes of PyYAML's pure-Python safe dumper, as every rendered file was
    written with: golden files and committed overlays compare them. libyaml's
    emitter writes the same bytes three to four times faster (a release.yaml
    of 1,000 images), and is used whenever `data` has none of the two things
    on which the emitters differ (`_same_from_libyaml`).
    """
    if _CDumper is not None and width == 4096 and _same_from_libyaml(data):
        return yaml.dump(data, Dumper=_CDumper, sort_keys=sort_keys, default_flow_style=False,
                         width=width)
    return yaml.safe_dump(data, sort_keys=sort_keys, default_flow_style=False, width=width)


_CDumper = getattr(yaml, "CSafeDumper", None)
_PLAIN_KEY = re.compile(r"[ -~]{1,50}\Z")  # printable ASCII, short even when quoted
_SHORT_TEXT = 400  # escaped at most 10 bytes a character: stays on one 4096-byte line


def _same_from_libyaml(data: Any) -> bool:
    """Whether libyaml's emitter writes `data` as the pure-Python one does.

    They differ (tests/test_safeyaml.py fuzzes both) only on a mapping key
    that is empty, long or not printable ASCII (one of them writes it as a
    `? key` complex key), and on a double-quoted string folded at the width.
    """
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not (isinstance(key, str) and _PLAIN_KEY.match(key)):
                    return False
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            if len(node) > _SHORT_TEXT:
                return False
        elif not (node is None or isinstance(node, (bool, int, float))):
            return False  # sets, bytes, dates: left to the pure-Python emitter
    return True


def dump_all(docs: Iterable[Any], *, explicit_start: bool = False) -> str:
    """Several documents, each as `dump` writes one; `explicit_start` puts `---` before each."""
    return yaml.safe_dump_all(list(docs), sort_keys=False, default_flow_style=False, width=4096,
                              explicit_start=explicit_start)


MAX_DEPTH = 256  # far past any record or overlay


def _scan(text: str, display: str) -> None:
    """Refuse aliases (billion laughs) and nesting past MAX_DEPTH, in one event scan, made
    only when the text could hold either: every alias starts with '*', and only flow
    brackets nest cheaply (libyaml composes recursively in C: 30,000 `[` kill the
    interpreter, a crash no exception handler sees)."""
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    if "*" not in text and not deep:
        return
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(f"{display}:{line}: YAML anchors and aliases are not allowed")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{display}:{line}: nested deeper than the limit of "
                                  f"{MAX_DEPTH}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _refuse_duplicate_keys(root: yaml.Node | None, display: str) -> None:
    stack = [root] if root is not None else []
    while stack:  # no aliases, so a tree: each node is visited once
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise ConfigError(f"{display}:{key.start_mark.line + 1}: invalid YAML: "
                                          f"found duplicate key \"{key.value}\"")
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _message(exc: yaml.YAMLError, display: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or ["?"])[0]
    return f"{display}:{line}: invalid YAML: {problem}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
