"""The InferenceService in an overlay: which one, whether it can canary, and mlops' patch.

mlops writes one JSON 6902 patch per environment,
`environments/<env>/inferenceservice-patch.yaml`, with the release's model
URI (the predictor's STORAGE_URI) and the canary split
(`spec.predictor.canaryTrafficPercent`). A strategic-merge patch would be
shorter, but kustomize knows no merge keys for CRDs and would replace the
whole containers list. JSON-patch paths use list indexes, so each replaced
value is guarded by a `test` op on its name: if the base is reordered, the
render fails loudly instead of patching the wrong container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops.adapters import safeyaml
from mlops.errors import ConfigError

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
PATCH_FILE = "inferenceservice-patch.yaml"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# The mode mlops writes. KServe 0.16 renamed Serverless -> Knative (and RawDeployment ->
# Standard, now the default): its controller records `Knative` in status.deploymentMode
# and its validating webhook then rejects every update still annotated `Serverless`;
# from 0.17 its defaulting webhook rewrites the annotation instead, so the live object
# differs from git (kserve 0.16 pkg/controller/v1beta1/inferenceservice/utils/utils.go
# GetDeploymentMode; 0.17+ pkg/constants/constants.go ParseDeploymentMode and
# pkg/apis/serving/v1beta1/inference_service_defaults.go; inference_service_validation.go
# validateDeploymentMode). docs/argocd-kserve.md has the version-by-version detail.
KNATIVE = "Knative"
# Read as the same mode, with a note: what a KServe <= 0.15 cluster (or an older repo) says.
LEGACY_MODES = {"Serverless": KNATIVE, "RawDeployment": "Standard"}
# Only a Knative-based mode can split traffic. Exact spellings: KServe compares them
# case-sensitively and treats anything else as its default mode (Standard).
CANARY_MODES = (KNATIVE, "Serverless")
STORAGE_ENV = "STORAGE_URI"
# The release id, set on the predictor container so that every release is a new revision.
# KServe splits canary traffic between revisions; a release whose pod template equals the
# stable one's would make none, and KServe then reads the split over one revision as a
# rollback and serves the revision before it (pkg/apis/serving/v1beta1/
# inference_service_status.go PropagateStatus, "traffic is split over the same revision").
RELEASE_ENV = "MLOPS_RELEASE"
RELEASE_KEY = "mlops.dev/release"  # the same, as an annotation, for a predictor without containers
RELEASE_ANNOTATION = RELEASE_KEY.replace("~", "~0").replace("/", "~1")  # as a JSON pointer token
PATCH_HEADER = (
    "# Written by mlops: the release's model URI and the canary split. Do not edit by hand.\n"
)


def services(objects: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [o for o in objects if o.get("apiVersion") == API_VERSION and o.get("kind") == KIND]


def find_service(objects: Sequence[Mapping[str, Any]], name: str | None,
                 where: str) -> Mapping[str, Any]:
    """The InferenceService called `name`, or the only one when no name is configured."""
    found = services(objects)
    names = [str(o.get("metadata", {}).get("name")) for o in found]
    if name is not None:
        for obj, obj_name in zip(found, names, strict=True):
            if obj_name == name:
                return obj
        raise ConfigError(f"{where} renders no InferenceService {name!r} "
                          f"(found: {', '.join(names) or 'none'})")
    if len(found) != 1:
        raise ConfigError(f"{where} renders {len(found)} InferenceServices "
                          f"({', '.join(names) or 'none'}); set `service:` for the environment")
    return found[0]


def deployment_mode(isvc: Mapping[str, Any]) -> str | None:
    annotations = isvc.get("metadata", {}).get("annotations") or {}
    mode = annotations.get(MODE_ANNOTATION) if isinstance(annotations, Mapping) else None
    return None if mode is None else str(mode)


def mode_note(isvc: Mapping[str, Any]) -> str | None:
    """A note for a legacy mode name: accepted, but KServe >= 0.16 wants the new one."""
    mode = deployment_mode(isvc)
    new = LEGACY_MODES.get(mode) if mode else None
    if new is None:
        return None
    name = isvc.get("metadata", {}).get("name")
    return (f"InferenceService {name} is annotated {MODE_ANNOTATION}: {mode}, the pre-0.16 "
            f"name of {new}; KServe 0.16 records {new} and may refuse later updates, and "
            f"0.17+ rewrites it (Argo CD then sees a difference), so write {new} unless the "
            "cluster runs KServe <= 0.15")


def check_canary_mode(isvc: Mapping[str, Any]) -> None:
    """Refuse what KServe would silently ignore: canaryTrafficPercent outside Knative mode."""
    name = isvc.get("metadata", {}).get("name")
    mode = deployment_mode(isvc)
    if mode is None:
        raise ConfigError(
            f"InferenceService {name} has no {MODE_ANNOTATION} annotation; canary rollouts "
            "need Knative mode, and newer KServe defaults to Standard: "
            f"annotate it {MODE_ANNOTATION}: {KNATIVE}")
    if mode not in CANARY_MODES:
        raise ConfigError(
            f"InferenceService {name} is annotated {MODE_ANNOTATION}: {mode}; KServe ignores "
            "canaryTrafficPercent outside Knative mode (called Serverless before KServe "
            "0.16), so mlops refuses to roll it out as a canary")


def _storage_paths(isvc: Mapping[str, Any]) -> tuple[str, str] | None:
    """(path of the env var's name, path of its value) for the predictor's STORAGE_URI."""
    containers = isvc.get("spec", {}).get("predictor", {}).get("containers") or []
    for c, container in enumerate(containers):
        for e, var in enumerate(container.get("env") or []):
            if isinstance(var, Mapping) and var.get("name") == STORAGE_ENV:
                base = f"/spec/predictor/containers/{c}/env/{e}"
                return f"{base}/name", f"{base}/value"
    return None


def _env_paths(isvc: Mapping[str, Any], name: str) -> tuple[int, int | None] | None:
    """(container index, index of env var `name` in it, or None) for the container that
    has `name`, else for the one with STORAGE_URI, else the first with an env list."""
    containers = isvc.get("spec", {}).get("predictor", {}).get("containers") or []
    with_env = [(c, [v.get("name") if isinstance(v, Mapping) else None for v in
                     container.get("env") or []])
                for c, container in enumerate(containers)
                if isinstance(container, Mapping) and isinstance(container.get("env"), list)]
    for wanted in (name, STORAGE_ENV):
        for c, names in with_env:
            if wanted in names:
                return c, names.index(name) if name in names else None
    return (with_env[0][0], None) if with_env else None


def _release_ops(isvc: Mapping[str, Any], release_id: str) -> list[dict[str, Any]]:
    """Set RELEASE_ENV on the predictor container: replaced (guarded by a test of its name)
    when the base has it, else appended to the env list, which leaves the others as they
    are; a first container without one gets a list of its own (`add` creates it). A
    predictor without containers (`model:`) gets the id as an annotation instead, which
    KServe copies into the revision's template too (components/predictor.go)."""
    found = _env_paths(isvc, RELEASE_ENV)
    if found is None:
        predictor = isvc.get("spec", {}).get("predictor", {})
        if predictor.get("containers"):
            return [{"op": "add", "path": "/spec/predictor/containers/0/env",
                     "value": [{"name": RELEASE_ENV, "value": release_id}]}]
        if isinstance(predictor.get("annotations"), Mapping):
            return [{"op": "add", "path": "/spec/predictor/annotations/" + RELEASE_ANNOTATION,
                     "value": release_id}]
        return [{"op": "add", "path": "/spec/predictor/annotations",
                 "value": {RELEASE_KEY: release_id}}]
    c, e = found
    if e is not None:
        base = f"/spec/predictor/containers/{c}/env/{e}"
        return [{"op": "test", "path": f"{base}/name", "value": RELEASE_ENV},
                {"op": "replace", "path": f"{base}/value", "value": release_id}]
    return [{"op": "add", "path": f"/spec/predictor/containers/{c}/env/-",
             "value": {"name": RELEASE_ENV, "value": release_id}}]


def patch_ops(isvc: Mapping[str, Any], model_uri: str | None,
              percent: int | None, release_id: str | None = None) -> list[dict[str, Any]]:
    """JSON 6902 ops putting the model URI, the release id and the canary split on `isvc`."""
    # The kind test first: it is always true, and it keeps the list from being
    # empty, which kustomize cannot tell from a strategic-merge patch.
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/kind", "value": KIND}]
    if model_uri is not None:
        paths = _storage_paths(isvc)
        if paths is None:
            name = isvc.get("metadata", {}).get("name")
            raise ConfigError(
                f"InferenceService {name} has no predictor container with a {STORAGE_ENV} env "
                "var to take the release's model URI; add one (any placeholder value)")
        ops += [{"op": "test", "path": paths[0], "value": STORAGE_ENV},
                {"op": "replace", "path": paths[1], "value": model_uri}]
    if release_id is not None:
        ops += _release_ops(isvc, release_id)
    if percent is not None:
        ops.append({"op": "add", "path": "/spec/predictor/canaryTrafficPercent",
                    "value": int(percent)})
    return ops


NEUTRAL_PATCH = [{"op": "test", "path": "/kind", "value": KIND}]


def render_patch(ops: Sequence[Mapping[str, Any]]) -> str:
    return PATCH_HEADER + safeyaml.dump([dict(o) for o in ops])


def patch_target(isvc: Mapping[str, Any]) -> dict[str, str]:
    group, version = API_VERSION.split("/")
    return {"group": group, "version": version, "kind": KIND,
            "name": str(isvc.get("metadata", {}).get("name"))}


def canary_percent(isvc: Mapping[str, Any]) -> int | None:
    value = isvc.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
    return None if value is None else int(value)


def release_mark(isvc: Mapping[str, Any]) -> str | None:
    """The release id the predictor's template carries (RELEASE_ENV, else RELEASE_KEY)."""
    found = _env_value(isvc, RELEASE_ENV)
    if found is not None:
        return found
    annotations = isvc.get("spec", {}).get("predictor", {}).get("annotations")
    return annotations.get(RELEASE_KEY) if isinstance(annotations, Mapping) else None


def storage_uri(isvc: Mapping[str, Any]) -> str | None:
    return _env_value(isvc, STORAGE_ENV)


def _env_value(isvc: Mapping[str, Any], name: str) -> str | None:
    """The value of the first predictor container variable called `name`."""
    for container in isvc.get("spec", {}).get("predictor", {}).get("containers") or []:
        for var in container.get("env") or []:
            if isinstance(var, Mapping) and var.get("name") == name:
                return var.get("value")
    return None
