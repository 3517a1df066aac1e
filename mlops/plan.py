"""The build plan: for each component, build it or reuse an existing image, and why.

Pure: registry lookups and git state come in as plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlops.inputs import ih_tag
from mlops.records import dataclass, field

if TYPE_CHECKING:  # types only: `mlops build` imports this before it knows it plans
    from mlops.buildcontext import ContextFile
    from mlops.components import ComponentSpec

BUILD = "build"
REUSE = "reuse"
FROM_LOCAL_CACHE = " (local cache)"  # ends the reason of a reuse on the local cache's word


@dataclass(frozen=True)
class PlannedComponent:
    spec: ComponentSpec
    image: str
    input_hash: str
    build_args: Mapping[str, str]
    action: str
    reason: str
    tags: tuple[str, ...]
    existing_digest: str | None = None
    dirty: bool = False
    blocked: str | None = None  # why it cannot proceed (e.g. registry unreachable)
    context_files: tuple[ContextFile, ...] = field(default=(), compare=False)
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)  # OCI labels

    @property
    def name(self) -> str:
        return self.spec.name


def image_repository(registry: str, component: str) -> str:
    return f"{registry}/{component}"


def tags_for(spec: ComponentSpec, input_hash: str, commit: str | None, dirty: bool) -> tuple:
    """`<version>`, `<version>-<short commit>[-dirty]` and `ih-<hash prefix>`."""
    tags = [spec.version.replace("+", "_")]
    if commit:
        suffix = "-dirty" if dirty else ""
        tags.append(f"{tags[0]}-{commit[:7]}{suffix}")
    tags.append(ih_tag(input_hash))
    return tuple(tags)


def decide(
    spec: ComponentSpec,
    input_hash: str,
    existing_digest: str | None,
    lookup_source: str,
    force: bool = False,
    lookup_error: str | None = None,
) -> tuple[str, str]:
    """(action, reason) for one component."""
    tag = ih_tag(input_hash)
    if force:
        return BUILD, "--force given"
    if existing_digest:
        return REUSE, f"{tag} already in registry{lookup_source}"
    if lookup_error:
        return BUILD, f"registry lookup failed ({lookup_error})"
    return BUILD, f"no image tagged {tag} in registry{lookup_source}"

