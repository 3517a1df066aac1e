"""A schedule of mlops.yaml as Kubeflow Pipelines' recurring run: a ScheduledWorkflow.

The object's shape is KFP's own (kubeflow/pipelines at
7b70c7b95f6832772efd6fd0029a4024491a0f44,
backend/src/crd/pkg/apis/scheduledworkflow/v1beta1/types.go): `kubeflow.org/v1beta1`
`ScheduledWorkflow` with `spec.enabled`, `maxConcurrency`, `noCatchup`,
`trigger.cronSchedule.cron` or `trigger.periodicSchedule.intervalSecond`,
`workflow.parameters` (name and value) and `pipelineName`; `status` is required
by the CRD (manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml).

Which pipeline it runs: no `workflow.spec` (that is the v1 path, an Argo Workflow
embedded in the object; the controller creates it directly). Without one the
controller asks the API server for a run of a PipelineVersion
(backend/src/crd/controller/scheduledworkflow/controller.go,
`submitNewWorkflowIfNotAlreadySubmitted`: `CreateRun` with a
`PipelineVersionReference` of `spec.pipelineId` and `spec.pipelineVersionId`).
Those two are ids, and for the Kubernetes-native PipelineVersions mlops compiles
an id is the object's `metadata.uid` (backend/src/apiserver/storage/
pipeline_store_kubernetes.go, `getK8sPipelineVersions` compares
`string(pipelineVersion.UID)`), which the cluster assigns: git cannot know it. So
the schedule names its PipelineVersion by name, in `spec.pipelineName` (types.go:
"This carries the name of the pipeline version in v2beta1"; the API server fills
it with the version's name, resource_manager.go `fetchTemplateFromPipelineSpec`),
and in the `mlops.dev/pipeline-version` label. docs/continuous-training.md says
what this means in a cluster today. Pure: plain data in, plain data out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlops.envconfig import Schedule
from mlops.errors import ConfigError
from mlops.records import dataclass

API_VERSION = "kubeflow.org/v1beta1"
KIND = "ScheduledWorkflow"
ENVIRONMENT_LABEL = "mlops.dev/environment"
PIPELINE_LABEL = "mlops.dev/pipeline"
VERSION_LABEL = "mlops.dev/pipeline-version"

# KFP's parameter types (pipeline_spec.proto ParameterType) -> the JSON values that fit.
_TYPES: dict[str, tuple[str, Any]] = {
    "STRING": ("a string", lambda v: isinstance(v, str)),
    "BOOLEAN": ("true or false", lambda v: isinstance(v, bool)),
    "NUMBER_INTEGER": ("a whole number",
                       lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "NUMBER_DOUBLE": ("a number",
                      lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    "LIST": ("a list", lambda v: isinstance(v, list)),
    "STRUCT": ("a mapping", lambda v: isinstance(v, dict)),
}


@dataclass(frozen=True)
class Target:
    """The PipelineVersion a schedule runs: its pipeline, its name, its root parameters."""

    pipeline: str
    version: str
    inputs: Mapping[str, Mapping[str, Any]]


def root_inputs(pipeline_spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """`root.inputDefinitions.parameters` of a compiled PipelineSpec: what a run may set."""
    root = pipeline_spec.get("root") or {}
    return dict((root.get("inputDefinitions") or {}).get("parameters") or {})


def check(schedule: Schedule, target: Target, env: str) -> None:
    """Refuse parameters the pipeline does not declare or of the wrong type, and required
    parameters left unset, at the schedule's line in mlops.yaml."""
    what = f"schedule {schedule.name!r} of {env}"
    for name, value in schedule.parameters.items():
        where = f"{schedule.at(f'parameters.{name}')}: {what}"
        declared = target.inputs.get(name)
        if declared is None:
            known = ", ".join(sorted(target.inputs)) or "none"
            raise ConfigError(f"{where}: pipeline {target.pipeline!r} declares no parameter "
                              f"{name!r} (declared: {known})")
        kind = str(declared.get("parameterType", ""))
        if kind in _TYPES and not _TYPES[kind][1](value):
            raise ConfigError(f"{where}: parameter {name!r} must be {_TYPES[kind][0]} "
                              f"({kind} in {target.version}), got {json.dumps(value)}")
    for name, declared in sorted(target.inputs.items()):
        if name not in schedule.parameters and _required(declared):
            raise ConfigError(f"{schedule.where}: {what}: pipeline {target.pipeline!r} needs "
                              f"parameter {name!r} (it has no default); set it under parameters:")


def _required(declared: Mapping[str, Any]) -> bool:
    return not declared.get("isOptional") and "defaultValue" not in declared


def render(schedule: Schedule, target: Target, env: str) -> dict[str, Any]:
    """The ScheduledWorkflow for `schedule`, running `target` (call `check` first)."""
    spec: dict[str, Any] = {
        "enabled": schedule.enabled,
        "maxConcurrency": schedule.max_concurrency,
        "noCatchup": not schedule.catchup,
        "trigger": _trigger(schedule),
        "pipelineName": target.version,
    }
    if schedule.parameters:
        spec["workflow"] = {"parameters": parameters(schedule.parameters)}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": schedule.name,
            "labels": {ENVIRONMENT_LABEL: env, PIPELINE_LABEL: target.pipeline,
                       VERSION_LABEL: target.version},
        },
        "spec": spec,
        "status": {},
    }


def _trigger(schedule: Schedule) -> dict[str, Any]:
    if schedule.cron is not None:
        return {"cronSchedule": {"cron": schedule.cron}}
    return {"periodicSchedule": {"intervalSecond": schedule.interval}}


def parameters(values: Mapping[str, Any]) -> list[dict[str, str]]:
    """KFP's `workflow.parameters`: each value as JSON text, which the controller parses
    back (controller.go: `val.UnmarshalJSON([]byte(param.Value))`); by name, so stable."""
    return [{"name": name, "value": json.dumps(values[name], sort_keys=True)}
            for name in sorted(values)]
