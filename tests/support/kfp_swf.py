"""The ScheduledWorkflow as KFP's controller decodes it, stricter than its CRD.

KFP's CRD (tests/data/crds/kubeflow.org_scheduledworkflows.yaml) only asks for
`spec` and `status` objects and keeps unknown fields, so an object with a
misspelt key or a number as a string passes it, and the controller then decodes
the field as empty. This schema is the Go types the controller decodes into,
written out from kubeflow/pipelines at 7b70c7b95f6832772efd6fd0029a4024491a0f44,
backend/src/crd/pkg/apis/scheduledworkflow/v1beta1/types.go (the JSON tags of
ScheduledWorkflowSpec, Trigger, CronSchedule, PeriodicSchedule,
WorkflowResource, Parameter), with no other keys allowed, plus the controller's
limits: maxConcurrency 1-10 (backend/src/crd/controller/scheduledworkflow/util/
scheduled_workflow.go clamps anything else) and a parameter value that is JSON
text (controller.go parses it with `structpb.Value.UnmarshalJSON`). It also
requires what mlops always writes: `enabled`, one trigger and `pipelineName`.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

_TIME = {"type": "string", "format": "date-time"}
_STRING = {"type": "string"}

SPEC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean"},
        "maxConcurrency": {"type": "integer", "minimum": 1, "maximum": 10},
        "noCatchup": {"type": "boolean"},
        "maxHistory": {"type": "integer", "minimum": 0, "maximum": 100},
        "trigger": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "cronSchedule": {"type": "object", "additionalProperties": False,
                                 "required": ["cron"],
                                 "properties": {"startTime": _TIME, "endTime": _TIME,
                                                "cron": {"type": "string", "minLength": 1}}},
                "periodicSchedule": {"type": "object", "additionalProperties": False,
                                     "required": ["intervalSecond"],
                                     "properties": {"startTime": _TIME, "endTime": _TIME,
                                                    "intervalSecond": {"type": "integer",
                                                                       "minimum": 1}}},
            },
            # mlops never renders a one-off run (neither trigger)
            "minProperties": 1, "maxProperties": 1,
        },
        "workflow": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "parameters": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["name", "value"],
                    "properties": {"name": {"type": "string", "minLength": 1},
                                   "value": _STRING}}},
                "pipelineRoot": _STRING,
                "spec": {},
            },
        },
        "experimentId": _STRING,
        "pipelineId": _STRING,
        "pipelineVersionId": _STRING,
        "pipelineName": _STRING,
        "serviceAccount": _STRING,
        "pluginsInput": {"type": "object", "additionalProperties": {"type": "object"}},
    },
    "required": ["enabled", "trigger", "pipelineName"],
}


def problems(doc: dict[str, Any]) -> list[str]:
    """What the controller would decode wrongly or refuse in `doc`'s spec."""
    validator = jsonschema.Draft7Validator(SPEC)
    found = [f"spec.{'.'.join(map(str, e.absolute_path))}: {e.message}"
             for e in validator.iter_errors(doc.get("spec"))]
    for param in (doc.get("spec") or {}).get("workflow", {}).get("parameters", []):
        try:
            json.loads(param["value"])
        except (ValueError, KeyError, TypeError):
            found.append(f"spec.workflow.parameters: {param!r} is not JSON text")
    return found
