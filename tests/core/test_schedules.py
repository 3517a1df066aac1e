"""A schedule as a KFP ScheduledWorkflow: its shape, its reference, its parameter checks.

The object follows kubeflow/pipelines at 7b70c7b95f6832772efd6fd0029a4024491a0f44:
backend/src/crd/pkg/apis/scheduledworkflow/v1beta1/types.go for the fields, and
backend/src/crd/controller/scheduledworkflow/controller.go for how they are used: with
no `workflow.spec` the controller asks the API server for a run of a PipelineVersion,
parsing each `workflow.parameters` value as JSON. The PipelineVersion is named by name
in `pipelineName` (types.go: "the name of the pipeline version in v2beta1"), because
its id is the cluster-assigned uid (backend/src/apiserver/storage/
pipeline_store_kubernetes.go); every rendering is checked against the vendored CRD
(tests/data/crds/) and the controller's Go types (tests/support/kfp_swf.py).
"""

from __future__ import annotations

import json

import pytest

from mlops.core import schedules
from mlops.envconfig import Schedule
from mlops.errors import ConfigError
from tests.support import kfp_swf
from tests.support.crds import VENDORED

INPUTS = {
    "c": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 1.0, "isOptional": True},
    "seed": {"parameterType": "NUMBER_INTEGER", "defaultValue": 42, "isOptional": True},
    "table": {"parameterType": "STRING"},  # required: no default
    "fast": {"parameterType": "BOOLEAN", "defaultValue": False, "isOptional": True},
    "tags": {"parameterType": "LIST", "isOptional": True, "defaultValue": []},
}
TARGET = schedules.Target("training", "training-0123456789", INPUTS)


def schedule(**kw) -> Schedule:
    values = {"pipeline": "training", "name": "nightly", "cron": "0 0 2 * * *",
              "parameters": {"table": "events"}, "where": "mlops.yaml:7",
              "lines": {"parameters.table": "mlops.yaml:9", "parameters.nope": "mlops.yaml:10",
                        "parameters.seed": "mlops.yaml:11"}}
    return Schedule(**{**values, **kw})


def validate(doc) -> None:
    from mlops.adapters import crds

    loaded = crds.load(VENDORED)
    assert loaded.covers(doc)
    assert crds.problems(loaded, doc) == []
    assert kfp_swf.problems(doc) == []


def test_cron_schedule_renders_kfps_object():
    s = schedule(parameters={"table": "events", "c": 0.5, "tags": ["a", "b"],
                             "when": "[[CurrentTime]]"}, max_concurrency=3, catchup=False)
    doc = schedules.render(s, TARGET, "dev")
    assert doc == {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "ScheduledWorkflow",
        "metadata": {"name": "nightly", "labels": {
            "mlops.dev/environment": "dev", "mlops.dev/pipeline": "training",
            "mlops.dev/pipeline-version": "training-0123456789"}},
        "spec": {
            "enabled": True, "maxConcurrency": 3, "noCatchup": True,
            "trigger": {"cronSchedule": {"cron": "0 0 2 * * *"}},
            "pipelineName": "training-0123456789",
            "workflow": {"parameters": [  # sorted by name; each value JSON text
                {"name": "c", "value": "0.5"},
                {"name": "table", "value": '"events"'},
                {"name": "tags", "value": '["a", "b"]'},
                {"name": "when", "value": '"[[CurrentTime]]"'},
            ]},
        },
        "status": {},
    }
    validate(doc)


def test_interval_schedule_is_periodic_and_defaults_follow_kfp():
    s = schedule(cron=None, interval=21600, parameters={"table": "t"}, enabled=False)
    doc = schedules.render(s, TARGET, "staging")
    assert doc["spec"]["trigger"] == {"periodicSchedule": {"intervalSecond": 21600}}
    assert doc["spec"]["enabled"] is False
    assert doc["spec"]["noCatchup"] is False and doc["spec"]["maxConcurrency"] == 1
    validate(doc)


def test_no_parameters_no_workflow_and_no_ids():
    """No `workflow.spec` (the v1 path) and no ids, which are the cluster's uids."""
    doc = schedules.render(schedule(parameters={}), schedules.Target("p", "p-1", {}), "dev")
    assert "workflow" not in doc["spec"]
    assert not {"pipelineId", "pipelineVersionId"} & set(doc["spec"])
    validate(doc)


def test_json_values_round_trip_as_the_controller_parses_them():
    values = {"a": "x", "b": 2, "c": 2.5, "d": True, "e": {"k": [1, None]}}
    assert {p["name"]: json.loads(p["value"]) for p in schedules.parameters(values)} == values


def test_root_inputs_of_a_pipeline_spec():
    spec = {"root": {"inputDefinitions": {"parameters": INPUTS}}, "components": {}}
    assert schedules.root_inputs(spec) == INPUTS
    assert schedules.root_inputs({"root": {}}) == {}


@pytest.mark.parametrize(("params", "message"), [
    ({"table": "t", "nope": 1},
     "mlops.yaml:10: schedule 'nightly' of dev: pipeline 'training' declares no parameter "
     "'nope' (declared: c, fast, seed, table, tags)"),
    ({"table": "t", "seed": 1.5},
     "mlops.yaml:11: schedule 'nightly' of dev: parameter 'seed' must be a whole number "
     "(NUMBER_INTEGER in training-0123456789), got 1.5"),
    ({"table": 3}, "mlops.yaml:9: schedule 'nightly' of dev: parameter 'table' must be a string"),
    ({"table": "t", "seed": True}, "parameter 'seed' must be a whole number"),
    ({"table": "t", "c": "high"}, "parameter 'c' must be a number"),
    ({"table": "t", "fast": "yes"}, "parameter 'fast' must be true or false"),
    ({"table": "t", "tags": "a"}, "parameter 'tags' must be a list"),
    ({}, "mlops.yaml:7: schedule 'nightly' of dev: pipeline 'training' needs parameter "
         "'table' (it has no default); set it under parameters:"),
])
def test_parameters_are_checked_against_the_pipeline(params, message):
    with pytest.raises(ConfigError) as caught:
        schedules.check(schedule(parameters=params), TARGET, "dev")
    assert message in caught.value.message


def test_declared_parameters_of_the_right_types_pass():
    schedules.check(schedule(parameters={"table": "t", "c": 1, "seed": 3, "fast": True,
                                         "tags": []}), TARGET, "dev")
