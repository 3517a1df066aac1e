"""Components: `components/<name>/component.yaml`, discovered, validated and cached.

The key table below is the reference for the file; errors name the file and
line. A parse cache keyed by git blob id lets a no-op plan over hundreds of
components read no YAML at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from mlops import names, schema
from mlops.adapters.yamlio import Located, load_file
from mlops.cache import ParseCache
from mlops.errors import ConfigError
from mlops.layout import COMPONENT_FILE, COMPONENTS_DIR, component_folders
from mlops.records import dataclass
from mlops.schema import Key
from mlops.tracked import FileIndex, git_blob_id

COMPONENT_KEYS: dict[str, Key] = {
    "name": Key(schema.string, "Component name; must equal its folder name.", required=True),
    "version": Key(schema.semver, "Semantic version; becomes an image tag.", required=True),
    "description": Key(schema.string, "One line about the component.", default=""),
    "dockerfile": Key(
        schema.repo_path, "Dockerfile path, relative to the component folder.", default="Dockerfile"
    ),
    "context": Key(
        schema.repo_path,
        "Build context, relative to the repository root (default: the component folder).",
    ),
    "build_args": Key(schema.build_args, "Build args for this component.", default={}),
    "depends_on": Key(
        schema.repo_paths,
        "Shared paths (relative to the repository root) that feed the input hash.",
        default=(),
    ),
    "test": Key(
        schema.command,
        "Command run inside the built image before it is pushed (list, or string split "
        "like a shell; no shell runs it).",
    ),
}


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    version: str
    folder: str
    dockerfile: str
    context: str
    build_args: Mapping[str, str]
    depends_on: tuple[str, ...]
    test: tuple[str, ...] | None
    description: str = ""

    @cached_property  # a plan asks several times per component; the fields never change
    def input_paths(self) -> tuple[str, ...]:
        """Repo-relative paths whose tracked files determine the image."""
        return tuple(dict.fromkeys((self.folder, self.context, *self.depends_on)))


def load_component(
    root: Path,
    folder_name: str,
    cache: ParseCache | None = None,
    index: FileIndex | None = None,
) -> ComponentSpec:
    """Load and check `components/<folder_name>/component.yaml`.

    With a cache, a file whose exact content was validated before skips YAML
    parsing. With an index of tracked files, the cache key is the file's blob
    id and the existence checks are index lookups, so nothing is read or
    stat'ed; any doubt falls back to the full, located checks.
    """
    if cache is not None:
        spec = _from_cache(root, folder_name, cache, index)
        if spec is not None:
            return spec
    path = root / COMPONENTS_DIR / folder_name / COMPONENT_FILE
    return _load_component_file(root, folder_name, path, cache)


def _cache_key(root: Path, folder_name: str, cache: ParseCache, index: FileIndex | None):
    """Keyed by git blob id: read from the index when tracked, else computed from the file."""
    rel = f"{COMPONENTS_DIR}/{folder_name}/{COMPONENT_FILE}"
    tracked = index.get(rel) if index else None
    if tracked is not None:
        return cache.key(rel, tracked.blob)
    try:
        return cache.key(rel, git_blob_id((root / rel).read_bytes()))
    except OSError:
        return None


def _from_cache(root: Path, folder_name: str, cache: ParseCache, index):
    key = _cache_key(root, folder_name, cache, index)
    values = cache.get(key) if key else None
    if not isinstance(values, dict):
        return None
    try:
        spec = _spec_from_values(f"{COMPONENTS_DIR}/{folder_name}", values)
    except (TypeError, KeyError):
        return None  # an older cache layout: parse the file again
    exists = _indexed_paths_exist if index is not None else _paths_exist
    if not exists(index if index is not None else root, spec):  # type: ignore[arg-type]
        return None  # let the full load report the located error
    return spec


def _load_component_file(
    root: Path, folder_name: str, path: Path, cache: ParseCache | None
) -> ComponentSpec:
    folder = f"{COMPONENTS_DIR}/{folder_name}"
    display = f"{folder}/{COMPONENT_FILE}"
    doc = load_file(path, display)
    values = schema.read_section(doc, doc.data, COMPONENT_KEYS, COMPONENT_FILE)
    _check_name(doc, values["name"], folder_name)
    spec = _spec_from_values(folder, values)
    _check_paths_exist(root, doc, spec)
    key = _cache_key(root, folder_name, cache, index=None) if cache is not None else None
    if cache is not None and key:
        cache.put(key, _cacheable(values))
    return spec


def _spec_from_values(folder: str, values: Mapping[str, Any]) -> ComponentSpec:
    test = values["test"]
    return ComponentSpec(
        name=values["name"],
        version=values["version"],
        folder=folder,
        dockerfile=f"{folder}/{values['dockerfile']}",  # both parts already normalized
        context=values["context"] or folder,
        build_args=dict(values["build_args"]),
        depends_on=tuple(values["depends_on"]),
        test=tuple(test) if test is not None else None,
        description=values["description"],
    )


def _cacheable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, Mapping) else v
        for k, v in values.items()
    }


def _check_name(doc: Located, name: str, folder_name: str) -> None:
    problem = names.component_name_problem(name)
    if problem:
        raise ConfigError(f"{doc.where(doc.data, 'name')}: name {problem}")
    if name != folder_name:
        raise ConfigError(
            f"{doc.where(doc.data, 'name')}: name {name!r} does not match its folder "
            f"{folder_name!r}"
        )


def _paths_exist(root: Path, spec: ComponentSpec) -> bool:
    return (
        (root / spec.dockerfile).is_file()
        and (root / spec.context).is_dir()
        and all((root / p).exists() for p in spec.depends_on)
    )


def _indexed_paths_exist(index: FileIndex, spec: ComponentSpec) -> bool:
    return (
        index.get(spec.dockerfile) is not None
        and index.has_dir(spec.context)
        and all(index.get(p) is not None or index.has_dir(p) for p in spec.depends_on)
    )


def _check_paths_exist(root: Path, doc: Located, spec: ComponentSpec) -> None:
    if not (root / spec.dockerfile).is_file():
        key = "dockerfile" if "dockerfile" in doc.data else "name"
        raise ConfigError(f"{doc.where(doc.data, key)}: Dockerfile not found: {spec.dockerfile}")
    if not (root / spec.context).is_dir():
        raise ConfigError(f"{doc.where(doc.data, 'context')}: context not found: {spec.context}")
    for path in spec.depends_on:
        if not (root / path).exists():
            raise ConfigError(
                f"{doc.where(doc.data, 'depends_on')}: depends_on path not found: {path}"
            )


def load_components(
    root: Path, cache: ParseCache | None = None, index: FileIndex | None = None,
    folders: Sequence[str] | None = None,
) -> list[ComponentSpec]:
    """Every component (`folders`: what `component_folders` gave the caller already)."""
    names = component_folders(root) if folders is None else folders
    return [load_component(root, name, cache, index) for name in names]
