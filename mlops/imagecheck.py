"""Binding a build record to this project: its images must be the configured ones.

A build record is a file anyone can write. Before a promotion trusts it, each
image must be `<configured registry>/<component>` and its digest must be what
the registry serves (hash-verified) for that component's `ih-<input hash>` tag.
Exit 1 (ConfigError): a record that does not match the configuration is wrong
input, not a missing approval. Pure: the registry lookup is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mlops.errors import ConfigError
from mlops.inputs import ih_tag
from mlops.names import component_name_problem
from mlops.threadmap import thread_map

INPUT_HASH = re.compile(r"^[0-9a-f]{64}$")  # sha256, hex: it becomes a tag in a URL path

# (image, tag) -> the digest the registry serves for it (hash-verified), or None
Served = Callable[[str, str], str | None]


def expected_image(registry: str, component: str) -> str:
    return f"{registry.rstrip('/')}/{component}"


def image_mismatch(registry: str, component: str, image: str) -> str | None:
    """Why `image` is not this project's image for `component`, or None."""
    want = expected_image(registry, component)
    if image != want:
        return f"image {image!r} is not the configured {want!r}"
    return None


def check_record_entries(registry: str, path: Any, entries: Mapping[str, Mapping[str, Any]],
                         served: Served) -> None:
    """Refuse entries naming another registry/repository or a digest their tag does not serve.

    Names and input hashes are checked for every entry before the first
    registry lookup; the lookups then run in parallel, in a stable order.
    """
    tags = {name: _tag_of(registry, path, name, entry) for name, entry in entries.items()}
    found = dict(zip(sorted(tags), thread_map(
        lambda n: served(str(entries[n]["image"]), tags[n]), sorted(tags), workers=8),
        strict=True))
    for name in sorted(tags):
        if found[name] != entries[name].get("digest"):
            raise ConfigError(
                f"{path}: component {name!r}: digest {entries[name].get('digest')} is not what "
                f"the registry serves for {tags[name]} ({found[name] or 'nothing'}); "
                "refusing the build record")


def lookups_ahead(registry: str, entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The (image, tag) lookups `check_record_entries` will make for these entries, so that
    they can be asked before the checkout that names the components is ready. An entry it
    would refuse is left out: only this project's image names reach the network."""
    last = {entry.get("component"): entry for entry in entries}  # as the check keeps them
    found = []
    for name, entry in last.items():
        if component_name_problem(name) is None:
            try:
                found.append((str(entry["image"]), _tag_of(registry, "", str(name), entry)))
            except (ConfigError, KeyError):
                continue
    return found


def _tag_of(registry: str, path: Any, name: str, entry: Mapping[str, Any]) -> str:
    problem = image_mismatch(registry, name, str(entry.get("image")))
    if problem:
        raise ConfigError(f"{path}: component {name!r}: {problem}; refusing the build record")
    input_hash = entry.get("input_hash")
    if not isinstance(input_hash, str) or not input_hash:
        raise ConfigError(f"{path}: component {name!r} has no input_hash")
    if not INPUT_HASH.match(input_hash):
        raise ConfigError(f"{path}: component {name!r}: input_hash {input_hash[:80]!r} is not "
                          "a sha256 in hex")
    return ih_tag(input_hash)
