"""PyYAML's C loader made strict, for the YAML files mlops edits and writes itself.

Kustomizations (edited by line) and `release.yaml` records are read with
PyYAML, which is fast but accepts two things silently. An alias is the
billion-laughs vector: a few hundred bytes that expand to gigabytes as soon
as anything walks or prints the value. A duplicate key keeps one of two
values without a word (kustomize itself refuses the file). Both are refused
here with `file:line`, as `yamlio` does for the config files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops.errors import ConfigError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_text(path: Path, display: str) -> str:
    """The file's text; not-UTF-8 bytes are a located error (FileNotFoundError passes)."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{display}:1: not UTF-8 text ({exc.reason})") from None


def compose(text: str, display: str) -> yaml.Node | None:
    """The document's node tree, with aliases and duplicate keys refused."""
    try:
        if "*" in text:  # every alias starts with '*'; most files need no event scan
            _refuse_aliases(text, display)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    _refuse_duplicate_keys(node, display)
    return node


def compose_all(text: str, display: str) -> list[yaml.Node]:
    """Every document's node tree (multi-document files), with the same refusals."""
    try:
        if "*" in text:
            _refuse_aliases(text, display)
        nodes = [n for n in yaml.compose_all(text, Loader=_Loader) if n is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    for node in nodes:
        _refuse_duplicate_keys(node, display)
    return nodes


def load_all(text: str, display: str) -> list[Any]:
    """Every document as plain data."""
    loader = _Loader("")
    try:
        return [loader.construct_document(n) for n in compose_all(text, display)]
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    finally:
        loader.dispose()


def load(text: str, display: str) -> Any:
    """The document as plain data (dicts, lists, scalars), or a located one-line error."""
    node = compose(text, display)
    if node is None:
        return None
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(_message(exc, display)) from None
    finally:
        loader.dispose()


def _refuse_aliases(text: str, display: str) -> None:
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else 1
            raise ConfigError(f"{display}:{line}: YAML anchors and aliases are not allowed")


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
