"""Binding a build record to this project: its images must be the configured ones.

A build record is a file anyone can write. Before a promotion trusts it, each
image must be `<configured registry>/<component>` and its digest must be what
the registry serves (hash-verified) for that component's `ih-<input hash>` tag.
Exit 1 (ConfigError/RegistryError): a record that does not match the
configuration is wrong input, not a missing approval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops.errors import ConfigError
from mlops.inputs import ih_tag
from mlops.names import split_image


def expected_image(registry: str, component: str) -> str:
    return f"{registry.rstrip('/')}/{component}"


def image_mismatch(registry: str, component: str, image: str) -> str | None:
    """Why `image` is not this project's image for `component`, or None."""
    want = expected_image(registry, component)
    if image != want:
        return f"image {image!r} is not the configured {want!r}"
    return None


def check_record_entry(root: Path, path: Any, name: str, entry: dict) -> None:
    """Refuse an entry naming another registry/repository or a digest the tag does not serve."""
    from mlops.config import load_config

    registry = load_config(root).registry
    problem = image_mismatch(registry, name, str(entry.get("image")))
    if problem:
        raise ConfigError(f"{path}: component {name!r}: {problem}; refusing the build record")
    input_hash = entry.get("input_hash")
    if not isinstance(input_hash, str) or not input_hash:
        raise ConfigError(f"{path}: component {name!r} has no input_hash")
    served = _served_digest(str(entry["image"]), ih_tag(input_hash))
    if served != entry.get("digest"):
        raise ConfigError(
            f"{path}: component {name!r}: digest {entry.get('digest')} is not what the registry "
            f"serves for {ih_tag(input_hash)} ({served or 'nothing'}); refusing the build record"
        )


def _served_digest(image: str, tag: str) -> str | None:
    from mlops.commands.build_runner import RegistryAccess

    host, repository = split_image(image)
    return RegistryAccess(image).client.manifest_digest(repository, tag)
