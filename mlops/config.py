"""Typed, frozen configuration: `mlops.yaml` and `components/<name>/component.yaml`.

The key tables below are the reference for both files; `docs/` is generated
from them, and every error names the file and line it comes from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import names, schema
from mlops.adapters.yamlio import Located, load_file, loads
from mlops.cache import CONFIG_CACHE, ParseCache
from mlops.errors import ConfigError, UsageError
from mlops.layout import CONFIG_FILE
from mlops.records import dataclass, field
from mlops.redact import redact
from mlops.schema import Key
from mlops.tracked import git_blob_id

if TYPE_CHECKING:  # re-exported lazily (`__getattr__` below)
    from mlops.envconfig import Environment, MetricGate

REGISTRY_ENV = "MLOPS_REGISTRY"
PROMETHEUS_URL_ENV = "MLOPS_PROMETHEUS_URL"
PROMETHEUS_TOKEN_ENV = "MLOPS_PROMETHEUS_TOKEN"  # noqa: S105 - a variable's name
TRUST_ROOT_ENV = "MLOPS_TRUST_ROOT"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


def _registry(value: Any, where: str) -> str:
    # The same check as `mlops init --registry`: docker would refuse what it refuses,
    # and only at build time, after `mlops validate` said ok.
    text = schema.string(value, where).strip().rstrip("/")  # `host/ns/` has long been taken
    problem = names.registry_problem(text)
    if problem:  # shown masked: a `user:token@` in it may hold a '/', which redact misses
        from mlops import repourl

        raise ConfigError(redact(f"{where} must look like host[:port][/namespace] (no scheme), "
                                 f"got {repourl.shown(text)!r}: {problem}"))
    return text


BUILD_KEYS: dict[str, Key] = {
    "jobs": Key(schema.positive_int, "How many components build in parallel.", default=2),
    "build_args": Key(
        schema.build_args,
        "Build args passed to every component (a component's own build_args win).",
        default={},
    ),
}

APPROVAL_KEYS: dict[str, Key] = {
    "allowed_signers": Key(
        schema.repo_path,
        "Allowed-signers file (git's gpg.ssh.allowedSignersFile format) that approvals, "
        "changes of the trust root and build provenance are verified against, relative to "
        "the repository root. A line's `valid-after`/`valid-before` are judged when mlops "
        "checks, never at a commit's own date (which whoever signs it writes): a key retired "
        "with `valid-before` cannot approve or change the trust root by backdating a commit "
        "(deleting its line retires it too). A line outside its window, or whose time does "
        "not parse, is left out, and a refusal names it. `cert-authority` lines count for "
        "provenance only, not for approvals or trust changes: git would check the "
        "certificate at the commit's date.",
        default=".mlops/allowed_signers",
    ),
    "release_managers": Key(
        schema.string_list,
        "Principals (as in the allowed-signers file) whose signed approvals count.",
        default=(),
    ),
    "builders": Key(
        schema.string_list,
        "Principals (as in the allowed-signers file) whose signed build provenance counts. "
        "When set, every promotion checks each pinned image's provenance against it.",
        default=(),
    ),
}

def _ref_name(value: Any, where: str) -> str:
    problem = names.ref_name_problem(value)
    if problem:  # the name reaches git's command line: `--upload-pack=...` must not
        raise ConfigError(f"{where} {problem}")
    return str(value)


GIT_KEYS: dict[str, Key] = {
    "remote": Key(_ref_name, "Remote that promotions push to.", default="origin"),
    "branch": Key(_ref_name, "Branch that promotions commit to.", default="main"),
}

def _http_url(value: Any, where: str) -> str:
    text = schema.string(value, where).strip().rstrip("/")
    if not text.startswith(("http://", "https://")) or " " in text:
        raise ConfigError(f"{where} must be an http:// or https:// URL, got {redact(text)!r}")
    return text


PROMETHEUS_KEYS: dict[str, Key] = {
    "url": Key(
        _http_url,
        f"Prometheus that canary analysis queries, e.g. http://prometheus:9090. "
        f"${PROMETHEUS_URL_ENV} overrides it; ${PROMETHEUS_TOKEN_ENV} is sent as a bearer token.",
    ),
}

def _mlflow_name(value: Any, where: str) -> str:
    text = schema.string(value, where).strip()
    if "/" in text or ":" in text:  # MLflow refuses them in registered model names
        raise ConfigError(f"{where} may not contain '/' or ':', got {text!r}")
    return text


_URI_LIKE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


def _tracking_uri(value: Any, where: str) -> str:
    """What the mlflow client takes: `scheme://...` (http, https, sqlite, ...) or databricks."""
    text = schema.string(value, where).strip().rstrip("/")
    if not (_URI_LIKE.match(text) or text in ("databricks", "databricks-uc")):
        raise ConfigError(f"{where} must be an MLflow tracking URI like http://mlflow:5000, "
                          f"got {redact(text)!r}")
    return text


TRACKING_KEYS: dict[str, Key] = {
    "uri": Key(
        _tracking_uri,
        f"MLflow tracking URI, e.g. http://mlflow:5000. ${TRACKING_URI_ENV} overrides it. "
        "When neither is set nothing is logged and the mlflow client is never imported "
        "(see [Continuous training](continuous-training.md#mlflow)).",
    ),
    "experiment": Key(
        schema.string, "MLflow experiment that `mlops run` logs to (default: the pipeline's "
        "name).",
    ),
    "model": Key(
        _mlflow_name, "Registered model that `mlops run` adds a version to and promotions set "
        "the environment's alias on (default: the pipeline's name).",
    ),
}

ARGOCD_KEYS: dict[str, Key] = {
    "namespace": Key(
        schema.string, "Namespace of the Argo CD Applications that `mlops status` reads.",
        default="argocd",
    ),
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
    "prometheus": Key(lambda v, w: v, "Where canary metrics live (see prometheus.*).",
                      default=None),
    "argocd": Key(lambda v, w: v, "Argo CD settings (see argocd.*).", default=None),
    "tracking": Key(lambda v, w: v, "MLflow experiment tracking and model registry "
                    "(see tracking.*).", default=None),
}

@dataclass(frozen=True)
class BuildSettings:
    jobs: int = 2
    build_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Approvals:
    allowed_signers: str = ".mlops/allowed_signers"
    release_managers: tuple[str, ...] = ()
    builders: tuple[str, ...] = ()


@dataclass(frozen=True)
class GitSettings:
    remote: str = "origin"
    branch: str = "main"


@dataclass(frozen=True)
class Prometheus:
    url: str | None = None


@dataclass(frozen=True)
class ArgoCD:
    namespace: str = "argocd"


@dataclass(frozen=True)
class Tracking:
    """MLflow: on only with a URI (`tracking.uri` or $MLFLOW_TRACKING_URI)."""

    uri: str | None = None
    experiment: str | None = None
    model: str | None = None

    @property
    def enabled(self) -> bool:
        return self.uri is not None

    def experiment_for(self, pipeline: str) -> str:
        return self.experiment or pipeline

    def model_for(self, pipeline: str) -> str:
        return self.model or pipeline


@dataclass(frozen=True)
class MlopsConfig:
    """The whole of `mlops.yaml`. `environments` are read when first asked for when
    the content came from the cache of validated files: a build never asks, and
    never loads the environment, canary and schedule types (~15 ms of imports)."""

    root: Path
    registry: str
    build: BuildSettings
    environments_of: Callable[[], tuple[Environment, ...]] = field(compare=False, repr=False)
    git: GitSettings
    approvals: Approvals = Approvals()
    prometheus: Prometheus = Prometheus()
    argocd: ArgoCD = ArgoCD()
    tracking: Tracking = Tracking()
    # Only ever from the environment ($MLOPS_TRUST_ROOT, or --trust-root): a root that the
    # branch could name would be one the branch could rewrite.
    trust_root: Path | None = None

    @property
    def environments(self) -> tuple[Environment, ...]:
        cached = self.__dict__.get("_environments")
        if cached is None:
            cached = self.environments_of()
            object.__setattr__(self, "_environments", cached)  # frozen: set once, here
        return cached

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


def environment_arg(config: MlopsConfig, name: str) -> Environment:
    """The environment a command line names; an unknown one is a usage error (exit 2)."""
    try:
        return config.environment(name)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def load_config(
    root: Path, environ: Mapping[str, str] | None = None, cache: ParseCache | None = None
) -> MlopsConfig:
    """Load `mlops.yaml`; content validated before is not parsed again.

    The build passes its parse cache. Other commands use a small one of their
    own in the clone's git dir, and content seen earlier in this process (a
    promotion reads the file in the user's clone and again in its workspace)
    is taken from memory: parsing it costs ~40 ms with ruamel's import.
    """
    environ = os.environ if environ is None else environ
    path = root / CONFIG_FILE
    own = cache is None
    if own:
        cache = _config_cache(root)
    cached = _cached_config_data(path, cache)
    config = None
    if cached is not None and cached[1] is not None:
        try:
            config = _config_from(root, Located(CONFIG_FILE, cached[1]), environ,
                                  validated=True)
        except ConfigError:
            pass  # fall through to a full parse, which reports the located error
    if config is None:
        doc = load_file(path, CONFIG_FILE)
        config = _config_from(root, doc, environ)
        if cached is not None:
            _store_plain(cache, cached[0], doc.data, parsed=True)
    elif cache is not None and cache.get(cached[0]) is None:  # type: ignore[index]
        _store_plain(cache, cached[0], cached[1])  # type: ignore[index]
    if own and cache is not None:
        _save_quietly(cache)
    return config


# mlops.yaml content this process parsed and validated, by cache key. Only a parse
# fills it, never a cache file: a file in the user's git dir must not stand in for
# the workspace's mlops.yaml or an older commit's approvals (the trust root).
_SEEN: dict[str, Any] = {}


def _config_cache(root: Path) -> ParseCache | None:
    git = root / ".git"
    return ParseCache(git / CONFIG_CACHE) if git.is_dir() else None


def _save_quietly(cache: ParseCache) -> None:
    try:
        cache.save()
    except OSError:
        pass  # a read-only clone: the next run parses again


def _cached_config_data(path: Path, cache: ParseCache | None) -> tuple[str, Any] | None:
    try:
        key = ParseCache.key(CONFIG_FILE, git_blob_id(path.read_bytes()))
    except OSError:
        return None
    if key in _SEEN:
        return key, _SEEN[key]
    return key, cache.get(key) if cache is not None else None


def _store_plain(cache: ParseCache | None, key: str, data: Any, parsed: bool = False) -> None:
    import json

    try:
        plain = json.loads(json.dumps(data))
        if parsed:
            _SEEN[key] = plain
        if cache is not None:
            cache.put(key, plain)
    except (TypeError, ValueError):
        pass  # values JSON cannot hold (dates, tags): just parse this file every time


def _config_from(root: Path, doc: Located, environ: Mapping[str, str],
                 validated: bool = False) -> MlopsConfig:
    """The configuration of `doc`; `validated`: its content passed this before (the
    cache's), so the environments may wait until they are asked for."""
    if doc.data is None:
        raise ConfigError(f"{CONFIG_FILE}:1: file is empty")
    top = schema.read_section(doc, doc.data, CONFIG_KEYS, CONFIG_FILE)
    return MlopsConfig(
        root=root,
        registry=_registry_from(top["registry"], environ, doc),
        build=BuildSettings(**_section_or_empty(doc, "build", BUILD_KEYS)),
        environments_of=_environments_reader(doc, validated),
        approvals=Approvals(**_section_or_empty(doc, "approvals", APPROVAL_KEYS)),
        git=GitSettings(**_section_or_empty(doc, "git", GIT_KEYS)),
        prometheus=_prometheus(doc, environ),
        argocd=ArgoCD(**_section_or_empty(doc, "argocd", ARGOCD_KEYS)),
        tracking=_tracking(doc, environ),
        trust_root=_trust_root(environ),
    )


def _environments_reader(doc: Located, validated: bool) -> Callable[[], tuple]:
    def read() -> tuple:
        from mlops.envconfig import read_environments

        return read_environments(doc, doc.data.get("environments"))

    if validated:
        return read
    found = read()  # a file parsed now is checked whole, before any command goes on
    return lambda: found


def _trust_root(environ: Mapping[str, str]) -> Path | None:
    value = environ.get(TRUST_ROOT_ENV, "").strip()
    return Path(value).expanduser().absolute() if value else None


def approvals_from_text(text: str, display: str) -> Approvals:
    """Only the `approvals:` section of an mlops.yaml (e.g. of an older commit).

    Content this process validated already (the branch's own mlops.yaml, most
    often) is not parsed again."""
    doc = _document(text, display)
    return Approvals(**_section_or_empty(doc, "approvals", APPROVAL_KEYS))


def gated_from_text(text: str, display: str) -> tuple[str, ...]:
    """The environments an mlops.yaml (e.g. of an older commit) marks `approval: true`,
    read leniently: an older commit's environments need not pass today's checks, and
    what is not read as `true` is not gated."""
    envs = _document(text, display).data.get("environments")
    if not isinstance(envs, list):
        return ()
    return tuple(env["name"] for env in envs if isinstance(env, Mapping)
                 and env.get("approval") is True and isinstance(env.get("name"), str))


def _document(text: str, display: str) -> Located:
    """An mlops.yaml's top-level mapping, parsed as the configuration is (content this
    process validated already, most often the branch's own, is not parsed again)."""
    seen = _SEEN.get(ParseCache.key(CONFIG_FILE, git_blob_id(text.encode("utf-8"))))
    doc = Located(display, seen if seen is not None else loads(text, display))
    if not isinstance(doc.data, Mapping):
        raise ConfigError(f"{display}:1: not a mapping")
    return doc


def _prometheus(doc: Located, environ: Mapping[str, str]) -> Prometheus:
    values = _section_or_empty(doc, "prometheus", PROMETHEUS_KEYS)
    override = environ.get(PROMETHEUS_URL_ENV, "").strip()
    if override:
        values["url"] = _http_url(override, f"${PROMETHEUS_URL_ENV}")
    return Prometheus(**values)


def _tracking(doc: Located, environ: Mapping[str, str]) -> Tracking:
    values = _section_or_empty(doc, "tracking", TRACKING_KEYS)
    override = environ.get(TRACKING_URI_ENV, "").strip()
    if override:
        values["uri"] = _tracking_uri(override, f"${TRACKING_URI_ENV}")
    return Tracking(**values)


def _registry_from(configured: str | None, environ: Mapping[str, str], doc: Located) -> str:
    override = environ.get(REGISTRY_ENV, "").strip()
    if override:
        return _registry(override, f"${REGISTRY_ENV}")
    if configured is None:
        raise ConfigError(f"{doc.path}:1: 'registry' is not set (nor ${REGISTRY_ENV})")
    return configured


def _section_or_empty(doc: Located, name: str, keys: dict[str, Key]) -> dict:
    """The top-level section `name`, defaulted when absent; one that is no mapping is
    reported at its key's line."""
    node = doc.data.get(name)
    if node is None:
        return {k: v.default for k, v in keys.items()}
    return schema.read_section(doc, node, keys, name, doc.where(doc.data, name))




__all__ = ["Environment", "MetricGate"]


def __getattr__(name: str) -> Any:
    """`config.Environment` and `config.MetricGate`, imported when first named."""
    if name in __all__:
        from mlops import envconfig

        return getattr(envconfig, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
