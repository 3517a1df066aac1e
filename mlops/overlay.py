"""Environment overlays: read and edit `environments/<env>/kustomization.yaml`.

Edits are made on the text, at lines located by the round-trip parser, like
pre-commit's autoupdate: comments, quoting, key order, indentation and every
unrelated entry stay byte for byte, and only the lines that change differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from mlops.errors import ConfigError
from mlops.yamlio import loads

ENVIRONMENTS_DIR = "environments"
KUSTOMIZATION = "kustomization.yaml"


@dataclass(frozen=True)
class ImagePin:
    name: str
    new_name: str | None
    digest: str | None
    new_tag: str | None


def kustomization_path(root: Path, env: str) -> Path:
    return root / ENVIRONMENTS_DIR / env / KUSTOMIZATION


def display_path(env: str) -> str:
    return f"{ENVIRONMENTS_DIR}/{env}/{KUSTOMIZATION}"


def read_text(root: Path, env: str) -> str:
    path = kustomization_path(root, env)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{display_path(env)}: not found (environment {env} has no overlay)"
        ) from None


def parse(text: str, display: str) -> Any:
    data = loads(text, display)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{display}:1: a kustomization must be a mapping")
    return data


def image_pins(data: Mapping[str, Any], display: str) -> dict[str, ImagePin]:
    images = data.get("images") or []
    if not isinstance(images, list):
        raise ConfigError(f"{display}: images must be a list")
    pins: dict[str, ImagePin] = {}
    for item in images:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{display}: every images entry needs a name")
        pins[item["name"]] = ImagePin(
            name=item["name"],
            new_name=_opt_str(item.get("newName")),
            digest=_opt_str(item.get("digest")),
            new_tag=_opt_str(item.get("newTag")),
        )
    return pins


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def resources(data: Mapping[str, Any]) -> list[str]:
    items = data.get("resources") or []
    return [str(i) for i in items] if isinstance(items, list) else []


def add_resource(text: str, resource: str, display: str) -> str:
    """`text` with `resource` appended to `resources:` (unchanged if already there)."""
    data = parse(text, display)
    if resource in resources(data):
        return text
    lines = text.splitlines(keepends=True)
    if "resources" not in data:
        return _ensure_newline(text) + f"resources:\n  - {resource}\n"
    key_line = data.lc.key("resources")[0]
    if not isinstance(data["resources"], list):
        raise ConfigError(f"{display}:{key_line + 1}: resources must be a list")
    items = cast(Any, data["resources"])  # a ruamel CommentedSeq, with .fa and .lc
    if not items or items.fa.flow_style():
        return _rewrite_flow_list(lines, key_line, [*map(str, items), resource])
    last_line, col = items.lc.item(len(items) - 1)
    dash_col = lines[last_line].rindex("-", 0, col)  # the item's value starts after "- "
    new = " " * dash_col + "- " + resource + "\n"
    insert_at = _end_of_item(lines, last_line, dash_col)
    lines[insert_at:insert_at] = [new]
    return "".join(lines)


def _rewrite_flow_list(lines: list[str], key_line: int, items: list[str]) -> str:
    indent = len(lines[key_line]) - len(lines[key_line].lstrip())
    pad = " " * indent
    block = [f"{pad}resources:\n"] + [f"{pad}  - {item}\n" for item in items]
    lines[key_line : key_line + 1] = block
    return "".join(lines)


def _end_of_item(lines: list[str], start: int, dash_col: int) -> int:
    """Index of the line after the sequence item that starts at `start`."""
    i = start + 1
    while i < len(lines):
        stripped = lines[i].strip()
        indent = len(lines[i]) - len(lines[i].lstrip())
        comment = stripped.startswith("#")
        if stripped and (indent < dash_col or (not comment and indent <= dash_col)):
            break
        i += 1
    while i > start + 1 and not lines[i - 1].strip():
        i -= 1  # keep blank lines that separate the list from what follows
    return i


def _ensure_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"
