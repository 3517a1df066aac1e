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


def set_images(text: str, pins: Mapping[str, tuple[str, str]], display: str) -> str:
    """Pin each component `name -> (newName, digest)` in `images:`, editing only those lines.

    An existing entry keeps its place, comments and quoting: its newName and
    digest values are replaced in place, a newTag line is dropped (a digest
    pins it), and missing keys are added under the entry's name. Missing
    entries are appended. Entries for other images are not touched.
    """
    for name in sorted(pins):
        text = _set_one_image(text, name, *pins[name], display)
    return text


def _set_one_image(text: str, name: str, new_name: str, digest: str, display: str) -> str:
    data = parse(text, display)
    images = data.get("images")
    if images is None or (isinstance(images, list) and not images):
        return _append_images_block(text, data, name, new_name, digest)
    if not isinstance(images, list):
        raise ConfigError(f"{display}: images must be a list")
    seq = cast(Any, images)
    for item in seq:
        if isinstance(item, Mapping) and item.get("name") == name:
            return _update_entry(text, cast(Any, item), {"newName": new_name, "digest": digest})
    last_line, col = seq.lc.item(len(seq) - 1)
    lines = text.splitlines(keepends=True)
    dash_col = lines[last_line].rindex("-", 0, col)
    at = _end_of_item(lines, last_line, dash_col)
    lines[at:at] = _entry_lines(" " * dash_col, name, new_name, digest)
    return "".join(lines)


def _entry_lines(pad: str, name: str, new_name: str, digest: str) -> list[str]:
    inner = pad + "  "
    return [f"{pad}- name: {name}\n", f"{inner}newName: {new_name}\n", f"{inner}digest: {digest}\n"]


def _append_images_block(text: str, data: Any, name: str, new_name: str, digest: str) -> str:
    lines = text.splitlines(keepends=True)
    block = ["images:\n", *_entry_lines("  ", name, new_name, digest)]
    if "images" in data:  # `images: []` or `images:` with nothing: replace that line
        at = data.lc.key("images")[0]
        lines[at : at + 1] = block
        return "".join(lines)
    return _ensure_newline(text) + "".join(block)


def _update_entry(text: str, item: Any, values: Mapping[str, str]) -> str:
    lines = text.splitlines(keepends=True)
    values = dict(values)
    for key in [k for k in values if k in item]:
        line, col = item.lc.value(key)
        lines[line] = _replace_scalar(lines[line], col, values.pop(key))
    removal: list[tuple[int, list[str], int]] = []
    if "newTag" in item:
        tag_line, tag_col = item.lc.key("newTag")
        if tag_line == item.lc.line and "digest" in values:
            # newTag shares the line with the item's dash: turn it into the digest line.
            _, value_col = item.lc.value("newTag")
            head = lines[tag_line][:tag_col] + "digest: "
            lines[tag_line] = _replace_scalar(head + lines[tag_line][value_col:], len(head),
                                              values.pop("digest"))
        else:
            removal.append((tag_line, [], 1))
    name_line, name_col = item.lc.key("name")
    insert = [f"{' ' * name_col}{k}: {v}\n" for k, v in values.items()]
    # Apply the insert and the newTag removal bottom-up so neither shifts the other.
    edits = sorted([(name_line + 1, insert, 0), *removal], key=lambda e: (e[0], e[2]), reverse=True)
    for at, new, removed in edits:
        lines[at : at + removed] = new
    return "".join(lines)


def _replace_scalar(line: str, col: int, value: str) -> str:
    """Swap the scalar that starts at `col` for `value`, keeping its quotes and any comment."""
    quote = line[col] if col < len(line) and line[col] in "'\"" else ""
    if quote:
        end = line.index(quote, col + 1) + 1
        return line[:col] + quote + value + quote + line[end:]
    end = col
    while end < len(line) and line[end] not in "\n" and not line[end:].startswith(" #"):
        end += 1
    token_end = col + len(line[col:end].rstrip())
    return line[:col] + value + line[token_end:]
