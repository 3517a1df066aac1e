"""Environment overlays: read and edit `environments/<env>/kustomization.yaml`.

Edits are made on the text, at lines located by parsing it, like
pre-commit's autoupdate: comments, quoting, key order, indentation and every
unrelated entry stay byte for byte, and only the lines that change differ.
Locations come from libyaml's composer (PyYAML's C loader), which is fast
enough to edit a 200-image overlay in milliseconds; it builds no objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.adapters import safeyaml
from mlops.errors import ConfigError
from mlops.records import dataclass

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
        return safeyaml.read_text(path, display_path(env))
    except FileNotFoundError:
        raise ConfigError(
            f"{display_path(env)}: not found (environment {env} has no overlay)"
        ) from None


def parse(text: str, display: str) -> Any:
    """The kustomization as plain data (a mapping), or a located one-line error."""
    # safeyaml refuses aliases (a billion-laughs bomb) and duplicate keys (kustomize does)
    return _as_kustomization(safeyaml.load(text, display), display)


def _as_kustomization(data: Any, display: str) -> Any:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{display}:1: a kustomization must be a mapping")
    return data


class _Map:
    """A composed YAML mapping: where each key and value starts."""

    def __init__(self, node: safeyaml.MappingNode) -> None:
        self.node = node
        self.pairs = {k.value: (k, v) for k, v in node.value if isinstance(k, safeyaml.ScalarNode)}

    def __contains__(self, key: str) -> bool:
        return key in self.pairs

    @property
    def line(self) -> int:
        return self.node.start_mark.line

    def key_pos(self, key: str) -> tuple[int, int]:
        mark = self.pairs[key][0].start_mark
        return mark.line, mark.column

    def value_pos(self, key: str) -> tuple[int, int]:
        mark = self.pairs[key][1].start_mark
        return mark.line, mark.column

    def value(self, key: str) -> safeyaml.Node:
        return self.pairs[key][1]

    def scalar(self, key: str) -> str | None:
        node = self.pairs.get(key, (None, None))[1]
        return node.value if isinstance(node, safeyaml.ScalarNode) else None


def _compose(text: str, display: str) -> _Map | None:
    node = safeyaml.compose(text, display)
    if node is None:
        return None
    if not isinstance(node, safeyaml.MappingNode):
        raise ConfigError(f"{display}:1: a kustomization must be a mapping")
    return _Map(node)


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
    if resource in resources(parse(text, display)):
        return text
    return _append_item(text, "resources", [resource], display)


def patches(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = data.get("patches") or []
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def add_patch(text: str, path: str, target: Mapping[str, str], display: str) -> str:
    """`text` with a `patches:` entry for `path` on `target` (unchanged if already there)."""
    for item in patches(parse(text, display)):
        if item.get("path") == path:
            if dict(item.get("target") or {}) != dict(target):
                raise ConfigError(f"{display}: the patches entry for {path} targets "
                                  f"{dict(item.get('target') or {})}, expected {dict(target)}; "
                                  "fix or remove it")
            return text
    lines = [f"path: {path}", "target:"] + [f"  {k}: {v}" for k, v in target.items()]
    return _append_item(text, "patches", lines, display)


def _append_item(text: str, key: str, item: list[str], display: str) -> str:
    """Append one block item (its lines, unindented) to the top-level list `key`."""
    top = _compose(text, display)
    if top is None or key not in top:
        return _ensure_newline(text) + f"{key}:\n" + "".join(_item_lines(item, 2))
    key_line = top.key_pos(key)[0]
    items = top.value(key)
    lines = text.splitlines(keepends=True)
    if isinstance(items, safeyaml.ScalarNode) and items.value in ("", "~", "null"):
        return _rewrite_flow_list(lines, key_line, key, [item])
    if not isinstance(items, safeyaml.SequenceNode):
        raise ConfigError(f"{display}:{key_line + 1}: {key} must be a list")
    if not items.value or items.flow_style:
        if any(not isinstance(i, safeyaml.ScalarNode) for i in items.value):
            raise ConfigError(f"{display}:{key_line + 1}: write {key} as a block list "
                              "so mlops can add to it")
        existing = [[str(i.value)] for i in items.value]
        return _rewrite_flow_list(lines, key_line, key, [*existing, item])
    last = items.value[-1].start_mark
    dash_col = lines[last.line].rindex("-", 0, last.column)  # the value starts after "- "
    at = _end_of_item(lines, last.line, dash_col)
    lines[at:at] = _item_lines(item, dash_col)
    return "".join(lines)


def _item_lines(item: list[str], dash_col: int) -> list[str]:
    pad = " " * dash_col
    return [f"{pad}- {item[0]}\n"] + [f"{pad}  {line}\n" for line in item[1:]]


def _rewrite_flow_list(lines: list[str], key_line: int, key: str,
                       items: list[list[str]]) -> str:
    indent = len(lines[key_line]) - len(lines[key_line].lstrip())
    block = [f"{' ' * indent}{key}:\n"]
    for item in items:
        block += _item_lines(item, indent + 2)
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


Edit = tuple[int, int, list[str]]  # (at line, lines removed, lines inserted)


def set_images(text: str, pins: Mapping[str, tuple[str, str]], display: str) -> str:
    """Pin each component `name -> (newName, digest)` in `images:`, editing only those lines.

    An existing entry keeps its place, comments and quoting: its newName and
    digest values are replaced in place, a newTag line is dropped (a digest
    pins it), and missing keys are added under the entry's name. Missing
    entries are appended. Entries for other images are not touched. The file
    is parsed once and every edit is applied bottom-up, so cost is linear.
    """
    node = safeyaml.compose(text, display)
    _as_kustomization(safeyaml.construct(node, display), display)  # its errors, before any edit
    top = _Map(node) if node is not None else None
    images = top.value("images") if top is not None and "images" in top else None
    if images is None or not isinstance(images, safeyaml.SequenceNode) or not images.value:
        if images is not None and not _empty(images):
            raise ConfigError(f"{display}: images must be a list")
        return _append_images_block(text, top, pins)
    _refuse_flow_style(images, display)
    lines = text.splitlines(keepends=True)
    entries = [_Map(i) for i in images.value if isinstance(i, safeyaml.MappingNode)]
    existing = {e.scalar("name"): e for e in entries}
    edits: list[Edit] = []
    for name in sorted(pins):
        if name in existing:
            new_name, digest = pins[name]
            edits += _entry_edits(lines, existing[name], {"newName": new_name, "digest": digest})
    missing = [n for n in sorted(pins) if n not in existing]
    if missing:
        last = images.value[-1].start_mark
        dash_col = lines[last.line].rindex("-", 0, last.column)
        new = [ln for n in missing for ln in _entry_lines(" " * dash_col, n, *pins[n])]
        edits.append((_end_of_item(lines, last.line, dash_col), 0, new))
    for at, removed, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[at : at + removed] = new
    return _checked("".join(lines), pins, display)


def _refuse_flow_style(images: safeyaml.SequenceNode, display: str) -> None:
    """Flow style (`images: [{name: a, ...}]`) cannot be edited line by line: refuse it."""
    flow = [images] if images.flow_style else [
        i for i in images.value if isinstance(i, safeyaml.MappingNode) and i.flow_style]
    if flow:
        raise ConfigError(f"{display}:{flow[0].start_mark.line + 1}: images is written in flow "
                          "style ([...] or {...}); mlops edits it line by line, so write it as a "
                          "block list (`- name: ...` entries)")


def _checked(text: str, pins: Mapping[str, tuple[str, str]], display: str) -> str:
    """The edited text, once it parses and pins exactly what was asked: never write worse."""
    found = image_pins(parse(text, display), display)
    for name, (new_name, digest) in pins.items():
        pin = found.get(name)
        if pin is None or (pin.new_name, pin.digest, pin.new_tag) != (new_name, digest, None):
            raise ConfigError(f"{display}: mlops could not pin {name} by editing this file in "
                              "place; simplify its images entry (one key per line)")
    return text


def _empty(node: safeyaml.Node) -> bool:
    if isinstance(node, safeyaml.SequenceNode):
        return not node.value
    return isinstance(node, safeyaml.ScalarNode) and node.value in ("", "~", "null")


def _entry_lines(pad: str, name: str, new_name: str, digest: str) -> list[str]:
    inner = pad + "  "
    return [f"{pad}- name: {name}\n", f"{inner}newName: {new_name}\n", f"{inner}digest: {digest}\n"]


def _append_images_block(text: str, top: _Map | None, pins: Mapping[str, tuple[str, str]]) -> str:
    lines = text.splitlines(keepends=True)
    block = ["images:\n"] + [ln for n in sorted(pins) for ln in _entry_lines("  ", n, *pins[n])]
    if top is not None and "images" in top:  # `images: []` or an empty `images:`
        at = top.key_pos("images")[0]
        lines[at : at + 1] = block
        return "".join(lines)
    return _ensure_newline(text) + "".join(block)


def _entry_edits(lines: list[str], item: _Map, values: dict[str, str]) -> list[Edit]:
    edits: list[Edit] = []
    for key in [k for k in values if k in item]:
        line, col = item.value_pos(key)
        edits.append((line, 1, [_replace_scalar(lines[line], col, values.pop(key))]))
    if "newTag" in item:
        tag_line, tag_col = item.key_pos("newTag")
        if tag_line == item.line and "digest" in values:
            # newTag shares the line with the item's dash: turn it into the digest line.
            _, value_col = item.value_pos("newTag")
            head = lines[tag_line][:tag_col] + "digest: "
            edits.append((tag_line, 1, [_replace_scalar(
                head + lines[tag_line][value_col:], len(head), values.pop("digest"))]))
        else:
            edits.append((tag_line, 1, []))
    name_line, name_col = item.key_pos("name")
    if values:
        edits.append((name_line + 1, 0, [f"{' ' * name_col}{k}: {v}\n" for k, v in values.items()]))
    return edits


def _replace_scalar(line: str, col: int, value: str) -> str:
    """Swap the scalar that starts at `col` for `value`, keeping its quotes and any comment."""
    quote = line[col] if col < len(line) and line[col] in "'\"" else ""
    if quote:
        end = line.index(quote, col + 1) + 1
        return line[:col] + quote + value + quote + line[end:]
    # The scalar runs to the line's end or to a comment (" #"), whichever comes first.
    end = min((i for i in (line.find("\n", col), line.find(" #", col)) if i >= 0),
              default=len(line))
    token_end = col + len(line[col:end].rstrip())
    return line[:col] + value + line[token_end:]
