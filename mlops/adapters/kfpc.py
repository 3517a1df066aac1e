"""kfp adapter: the only importer of the kfp SDK.

Imports a pipeline file with component images resolved, compiles it into
Kubeflow Pipelines' Kubernetes-native `Pipeline` + `PipelineVersion`
manifests, and runs a compiled pipeline spec with `kfp.local` on Docker.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.adapters import safeyaml
from mlops.dsl import Resolver, UnknownComponentError, resolving
from mlops.errors import ConfigError, MlopsError
from mlops.records import dataclass

_module_ids = itertools.count()


@dataclass(frozen=True)
class LoadedPipeline:
    name: str  # resource name (from the file name)
    function_name: str
    pipeline: Any  # kfp GraphComponent
    components: tuple[str, ...]  # component images it asked for


def load_pipeline(path: Path, display: str, name: str, resolve: Resolver) -> LoadedPipeline:
    """Import `path` with `component_image` resolved, and find its one pipeline."""
    used: list[str] = []

    def record(component: str) -> str:
        used.append(component)
        return resolve(component)

    module = _import(path, display, record)
    function_name, pipeline = _find_pipeline(module, display, name)
    return LoadedPipeline(name, function_name, pipeline, tuple(dict.fromkeys(used)))


def _import(path: Path, display: str, resolve: Resolver):
    module_name = f"_mlops_pipeline_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{display}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # sibling helper modules import as usual
    try:
        with resolving(resolve), contextlib.redirect_stdout(io.StringIO()):
            spec.loader.exec_module(module)
    except UnknownComponentError as exc:
        raise ConfigError(f"{display}: {exc}") from None
    except MlopsError:
        raise
    except (Exception, SystemExit) as exc:  # any error in user code becomes one located line
        # (sys.exit() at import, too: it would end mlops with no message and its code)
        raise ConfigError(f"{display}: failed to import: {_describe(exc, path)}") from None
    finally:
        sys.path.remove(str(path.parent))
        sys.modules.pop(module_name, None)
    return module


def _describe(exc: BaseException, path: Path) -> str:
    line = ""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = f" (line {tb.tb_lineno})"
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.lineno:
        line = f" (line {exc.lineno})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}{line}".rstrip(": ")


def _find_pipeline(module, display: str, name: str) -> tuple[str, Any]:
    from kfp.dsl.graph_component import GraphComponent

    found = {
        attr: value
        for attr, value in vars(module).items()
        if isinstance(value, GraphComponent) and not attr.startswith("_")
    }
    if not found:
        raise ConfigError(f"{display}: defines no pipeline (no @dsl.pipeline function)")
    if len(found) == 1:
        return next(iter(found.items()))
    wanted = name.replace("-", "_")
    if wanted in found:
        return wanted, found[wanted]
    raise ConfigError(
        f"{display}: defines several pipelines ({', '.join(sorted(found))}); "
        f"name the one to compile {wanted!r}"
    )


def sdk_version() -> str:
    """The kfp version the compiler stamps into the IR's `sdkVersion` (`kfp-<version>`).

    The compiler reads `kfp.__version__` at compile time (kfp/compiler/
    pipeline_spec_builder.py: `pipeline_spec.sdk_version = f'kfp-{kfp.__version__}'`).
    When kfp is not loaded yet, the installed distribution's version is that
    value, and reading it does not import kfp: a warm, unchanged compile stays
    free of the import.
    """
    loaded = sys.modules.get("kfp")
    version = getattr(loaded, "__version__", None) if loaded is not None else None
    if version:
        return str(version)
    from importlib import metadata  # ~13 ms: only a promotion with pipelines asks

    return metadata.version("kfp")


def compile_manifests(loaded: LoadedPipeline, version_name: str) -> list[dict[str, Any]]:
    """Compile into `[Pipeline, PipelineVersion]` documents with the kfp SDK."""
    from kfp import compiler
    from kfp.compiler.compiler_utils import KubernetesManifestOptions

    options = KubernetesManifestOptions(
        pipeline_name=loaded.name,
        pipeline_display_name=loaded.name,
        pipeline_version_name=version_name,
        pipeline_version_display_name=loaded.name,
        include_pipeline_manifest=True,
    )
    with tempfile.TemporaryDirectory(prefix="mlops-compile-") as tmp:
        target = Path(tmp) / "pipeline.yaml"
        try:
            compiler.Compiler().compile(
                loaded.pipeline,
                str(target),
                kubernetes_manifest_format=True,
                kubernetes_manifest_options=options,
            )
        except Exception as exc:  # kfp raises plain exceptions for bad pipelines
            raise ConfigError(f"pipelines/{loaded.name}: kfp cannot compile it: {exc}") from None
        return [doc for doc in safeyaml.pure_load_all(target.read_text()) if doc]


def run_local(
    pipeline_spec: Mapping[str, Any],
    pipeline_root: Path,
    arguments: Mapping[str, Any],
) -> dict[str, Any]:
    """Run a compiled pipeline spec with kfp.local's DockerRunner; return its outputs."""
    from kfp import components, local

    # PyYAML's defaults (sorted keys, 80 columns), as this text has always been made
    text = safeyaml.dump(dict(pipeline_spec), sort_keys=True, width=80)
    component = components.load_component_from_text(text)
    # command+args replace the image ENTRYPOINT, as on a real cluster. The task runs as
    # the invoking user, who owns the mounted pipeline_root: the components' own user
    # (a non-root UID, for a cluster's runAsNonRoot) could not write outputs there.
    user = f"{os.getuid()}:{os.getgid()}"
    local.init(
        runner=local.DockerRunner(network_mode="host", entrypoint=[""], user=user),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    try:
        # kfp.local prints task logs on stdout; stdout belongs to the result (--json).
        with contextlib.redirect_stdout(sys.stderr):
            task = component(**arguments)
    except Exception as exc:  # kfp.local raises RuntimeError naming the failed task
        raise MlopsError(f"local run failed: {str(exc).splitlines()[0]}") from None
    return dict(task.outputs)


def artifact_path(artifact: Any) -> Path | None:
    path = getattr(artifact, "path", None)
    return Path(path) if path else None

