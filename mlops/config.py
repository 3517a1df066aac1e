"""Typed, frozen configuration: `mlops.yaml` and `components/<name>/component.yaml`.

The key tables below are the reference for both files; `docs/` is generated
from them, and every error names the file and line it comes from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import names, schema
from mlops.envconfig import Environment, MetricGate, read_environments
from mlops.errors import ConfigError
from mlops.schema import Key
from mlops.yamlio import Located, load_file

if TYPE_CHECKING:
    from mlops.cache import ParseCache
    from mlops.inputs import FileIndex

CONFIG_FILE = "mlops.yaml"
COMPONENTS_DIR = "components"
COMPONENT_FILE = "component.yaml"
REGISTRY_ENV = "MLOPS_REGISTRY"


def _registry(value: Any, where: str) -> str:
    text = schema.string(value, where).strip().rstrip("/")
    if "://" in text or not names.REGISTRY.match(text):
        raise ConfigError(
            f"{where} must look like host[:port][/namespace] (no scheme), got {text!r}"
        )
    return text


def _build_args(value: Any, where: str) -> dict[str, str]:
    args = schema.string_map(value, where)
    for key in args:
        if not names.BUILD_ARG.match(key):
            raise ConfigError(f"{where}: {key!r} is not a valid build arg name")
    return args


def _semver(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, str | int | float) else ""
    if not isinstance(value, str) or not names.SEMVER.match(text):
        raise ConfigError(f"{where} must be a semantic version like 1.2.3, got {value!r}")
    return text


def _repo_path(value: Any, where: str) -> str:
    problem = names.repo_path_problem(value)
    if problem:
        raise ConfigError(f"{where} {problem}")
    return names.normalize_repo_path(value)


def _repo_paths(value: Any, where: str) -> tuple[str, ...]:
    return tuple(_repo_path(v, where) for v in schema.string_list(value, where))


BUILD_KEYS: dict[str, Key] = {
    "jobs": Key(schema.positive_int, "How many components build in parallel.", default=2),
    "build_args": Key(
        _build_args,
        "Build args passed to every component (a component's own build_args win).",
        default={},
    ),
}

APPROVAL_KEYS: dict[str, Key] = {
    "allowed_signers": Key(
        _repo_path,
        "Allowed-signers file (git's gpg.ssh.allowedSignersFile format) that approvals are "
        "verified against, relative to the repository root.",
        default=".mlops/allowed_signers",
    ),
    "release_managers": Key(
        schema.string_list,
        "Principals (as in the allowed-signers file) whose signed approvals count.",
        default=(),
    ),
}

GIT_KEYS: dict[str, Key] = {
    "remote": Key(schema.string, "Remote that promotions push to.", default="origin"),
    "branch": Key(schema.string, "Branch that promotions commit to.", default="main"),
}

CONFIG_KEYS: dict[str, Key] = {
    "registry": Key(
        _registry,
        "Registry and namespace for component images, e.g. 127.0.0.1:5000/mlops. "
        f"${REGISTRY_ENV} overrides it.",
    ),
    "build": Key(lambda v, w: v, "Build settings (see build.*).", default=None),
    "environments": Key(
        lambda v, w: v, "Ordered environments a release moves through.", default=None
    ),
    "git": Key(lambda v, w: v, "Git remote and branch (see git.*).", default=None),
    "approvals": Key(lambda v, w: v, "Who may approve (see approvals.*).", default=None),
}

COMPONENT_KEYS: dict[str, Key] = {
    "name": Key(schema.string, "Component name; must equal its folder name.", required=True),
    "version": Key(_semver, "Semantic version; becomes an image tag.", required=True),
    "description": Key(schema.string, "One line about the component.", default=""),
    "dockerfile": Key(
        _repo_path, "Dockerfile path, relative to the component folder.", default="Dockerfile"
    ),
    "context": Key(
        _repo_path,
        "Build context, relative to the repository root (default: the component folder).",
    ),
    "build_args": Key(_build_args, "Build args for this component.", default={}),
    "depends_on": Key(
        _repo_paths,
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
class BuildSettings:
    jobs: int = 2
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Approvals:
    allowed_signers: str = ".mlops/allowed_signers"
    release_managers: tuple[str, ...] = ()


@dataclass(frozen=True)
class GitSettings:
    remote: str = "origin"
    branch: str = "main"


@dataclass(frozen=True)
class MlopsConfig:
    root: Path
    registry: str
    build: BuildSettings
    environments: tuple[Environment, ...]
    git: GitSettings
    approvals: Approvals = Approvals()

    def next_after(self, name: str) -> Environment | None:
        names = [e.name for e in self.environments]
        i = names.index(self.environment(name).name)
        return self.environments[i + 1] if i + 1 < len(names) else None

    def previous(self, name: str) -> Environment | None:
        names = [e.name for e in self.environments]
        i = names.index(self.environment(name).name)
        return self.environments[i - 1] if i > 0 else None

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.environments) or "none"
        raise ConfigError(f"unknown environment {name!r} (known: {known})")


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

    @property
    def input_paths(self) -> tuple[str, ...]:
        """Repo-relative paths whose tracked files determine the image."""
        return tuple(dict.fromkeys((self.folder, self.context, *self.depends_on)))


def load_config(
    root: Path, environ: Mapping[str, str] | None = None, cache: ParseCache | None = None
) -> MlopsConfig:
    """Load `mlops.yaml`; with a cache, content validated before is not parsed again."""
    environ = os.environ if environ is None else environ
    path = root / CONFIG_FILE
    cached = _cached_config_data(path, cache)
    if cached is not None and cached[1] is not None:
        try:
            return _config_from(root, Located(CONFIG_FILE, cached[1]), environ)
        except ConfigError:
            pass  # fall through to a full parse, which reports the located error
    doc = load_file(path, CONFIG_FILE)
    config = _config_from(root, doc, environ)
    if cache is not None and cached is not None:
        _store_plain(cache, cached[0], doc.data)
    return config


def _cached_config_data(path: Path, cache: ParseCache | None) -> tuple[str, Any] | None:
    from mlops.inputs import git_blob_id  # here: mlops.inputs imports this module

    if cache is None:
        return None
    try:
        key = cache.key(CONFIG_FILE, git_blob_id(path.read_bytes()))
    except OSError:
        return None
    return key, cache.get(key)


def _store_plain(cache: ParseCache, key: str, data: Any) -> None:
    import json

    try:
        cache.put(key, json.loads(json.dumps(data)))
    except (TypeError, ValueError):
        pass  # values JSON cannot hold (dates, tags): just parse this file every time


def _config_from(root: Path, doc: Located, environ: Mapping[str, str]) -> MlopsConfig:
    if doc.data is None:
        raise ConfigError(f"{CONFIG_FILE}:1: file is empty")
    top = schema.read_section(doc, doc.data, CONFIG_KEYS, CONFIG_FILE)
    return MlopsConfig(
        root=root,
        registry=_registry_from(top["registry"], environ, doc),
        build=_build_settings(doc, doc.data.get("build")),
        environments=read_environments(doc, doc.data.get("environments")),
        approvals=Approvals(
            **_section_or_empty(doc, doc.data.get("approvals"), APPROVAL_KEYS, "approvals")
        ),
        git=GitSettings(**_section_or_empty(doc, doc.data.get("git"), GIT_KEYS, "git")),
    )


def _registry_from(configured: str | None, environ: Mapping[str, str], doc: Located) -> str:
    override = environ.get(REGISTRY_ENV, "").strip()
    if override:
        return _registry(override, f"${REGISTRY_ENV}")
    if configured is None:
        raise ConfigError(f"{doc.path}:1: 'registry' is not set (nor ${REGISTRY_ENV})")
    return configured


def _section_or_empty(doc: Located, node: Any, keys: dict[str, Key], what: str) -> dict:
    if node is None:
        return {k: v.default for k, v in keys.items()}
    return schema.read_section(doc, node, keys, what)


def _build_settings(doc: Located, node: Any) -> BuildSettings:
    return BuildSettings(**_section_or_empty(doc, node, BUILD_KEYS, "build"))


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
    from mlops.inputs import git_blob_id  # here: mlops.inputs imports this module

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


def component_folders(root: Path) -> list[str]:
    """Names of the folders under components/ that hold a component.yaml."""
    base = os.path.join(root, COMPONENTS_DIR)
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        e.name
        for e in entries
        if e.is_dir() and os.path.isfile(os.path.join(e.path, COMPONENT_FILE))
    )


def load_components(
    root: Path, cache: ParseCache | None = None, index: FileIndex | None = None
) -> list[ComponentSpec]:
    return [load_component(root, name, cache, index) for name in component_folders(root)]


__all__ = ["Environment", "MetricGate"]
