"""Writing the release's model URI and the canary split into an overlay's InferenceService."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops import argocd, envconfig, isvc, modeluri, overlay
from mlops.adapters import kustomize, safeyaml
from mlops.atomicfile import write_text_atomic
from mlops.config import MlopsConfig
from mlops.errors import ConfigError
from mlops.services.envdir import EnvDir


def patch_path(root: Path, env: str) -> Path:
    return EnvDir(root, env).patch_path


def write_serving_patch(root: Path, env: envconfig.Environment, model_uri: str | None,
                        percent: int | None, release_id: str | None = None
                        ) -> dict[str, Any] | None:
    """Patch the environment's InferenceService; None when it has nothing to patch.

    Works on a clone, so it may write before it knows the result renders; the
    caller commits only after the final render below has been checked.
    """
    if model_uri is not None:  # before any write: the cluster must be able to fetch it
        modeluri.check(model_uri, env.model_schemes, env.name)
    path = patch_path(root, env.name)
    if model_uri is None and percent is None and not path.exists():
        return None
    overlay_dir = path.parent
    if path.exists():  # render the base without our last patch, whose tests may be stale
        write_text_atomic(path, isvc.render_patch(isvc.NEUTRAL_PATCH))
    where = EnvDir(root, env.name).where
    target = isvc.find_service(kustomize.render(overlay_dir, where), env.service, where)
    if percent is not None or env.canary is not None:  # a canary environment's first release too
        isvc.check_canary_mode(target)
    ops = isvc.patch_ops(target, model_uri, percent, release_id)
    write_text_atomic(path, isvc.render_patch(ops))
    text = overlay.read_text(root, env.name)
    new_text = overlay.add_patch(text, isvc.PATCH_FILE, isvc.patch_target(target),
                                 overlay.display_path(env.name))
    if new_text != text:
        write_text_atomic(overlay.kustomization_path(root, env.name), new_text)
    return _check_rendered(overlay_dir, where, target, (model_uri, percent, release_id))


def _check_rendered(overlay_dir: Path, where: str, target, expected: tuple) -> dict:
    """The overlay renders with the model URI, canary split and release id just patched."""
    name = target["metadata"]["name"]
    rendered = isvc.find_service(kustomize.render(overlay_dir, where), name, where)
    model_uri, percent, release_id = expected
    seen = (isvc.storage_uri(rendered) if model_uri is not None else None,
            isvc.canary_percent(rendered),
            isvc.release_mark(rendered) if release_id is not None else None)
    if seen != expected:
        raise ConfigError(f"{where}: after patching, InferenceService {name} renders with "
                          f"model {seen[0]!r}, canary {seen[1]!r} and release {seen[2]!r}, "
                          f"expected {model_uri!r}, {percent!r} and {release_id!r}; does "
                          "another patch override them?")
    return dict(rendered)


def released_environments(root: Path, config: MlopsConfig) -> list[str]:
    """The environments that have a release.yaml: the ones Argo CD may sync automatically."""
    return [env.name for env in config.environments
            if EnvDir(root, env.name).has_record()]


def enable_automated_sync(root: Path, env: envconfig.Environment) -> bool:
    """Turn on the environment's automated sync in applications.yaml; True if it changed.

    Called at every promotion (idempotent). An environment's Application syncs
    automatically only once it has a release: before that its overlay renders
    the base's placeholder image. A repository without the file (its Applications
    live elsewhere) is left alone.
    """
    path = root / argocd.APPLICATIONS_FILE
    try:
        text = safeyaml.read_text(path, argocd.APPLICATIONS_FILE)
    except FileNotFoundError:
        return False
    new_text = argocd.enable_automated_sync(text, env.argocd_application)
    if new_text == text:
        return False
    write_text_atomic(path, new_text)
    return True
