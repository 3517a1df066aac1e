"""`schedules:` of an environment in mlops.yaml: typed values, and located errors."""

from __future__ import annotations

import pytest

from mlops.config import load_config
from mlops.envconfig import Schedule
from mlops.errors import ConfigError

HEAD = "registry: r.example/x\nenvironments:\n  - name: dev\n    schedules:\n"


def load(tmp_path, items: str):
    (tmp_path / "mlops.yaml").write_text(HEAD + items)
    return load_config(tmp_path, {})


def test_schedules_are_read_with_defaults_and_kfp_cron(tmp_path):
    config = load(tmp_path, (
        "      - pipeline: training\n"             # line 5
        "        cron: '0 2 * * *'\n"
        "        parameters:\n"
        "          c: 0.5\n"                        # line 8
        "          tags: [a, b]\n"
        "      - pipeline: my_pipe\n"
        "        name: every-6h\n"
        "        interval: 6h\n"
        "        max_concurrency: 10\n"
        "        catchup: false\n"
        "        enabled: false\n"))
    nightly, periodic = config.environment("dev").schedules
    assert nightly == Schedule(pipeline="training", name="training", cron="0 0 2 * * *",
                               parameters={"c": 0.5, "tags": ["a", "b"]})
    assert type(nightly.parameters["c"]) is float and type(nightly.parameters["tags"]) is list
    assert nightly.where == "mlops.yaml:5" and nightly.at("parameters.c") == "mlops.yaml:8"
    assert periodic == Schedule(pipeline="my_pipe", name="every-6h", interval=21600,
                                max_concurrency=10, catchup=False, enabled=False)
    assert config.environment("dev").schedules[1].at("pipeline") == "mlops.yaml:10"


BAD = [
    ("      - pipeline: training\n        cron: '0 2 * *'\n",
     "mlops.yaml:6: cron '0 2 * *' has 4 fields; give 5 (minute hour day-of-month month "
     "day-of-week) or 6 (seconds first, as Kubeflow Pipelines reads them)"),
    ("      - pipeline: training\n        cron: '0 25 * * *'\n",
     "mlops.yaml:6: cron '0 25 * * *' hour field '25' is outside 0-23"),
    ("      - pipeline: training\n        cron: '@daily'\n        interval: 1h\n",
     "mlops.yaml:5: schedule of 'training' in dev sets both cron and interval "
     "(give exactly one)"),
    ("      - pipeline: training\n",
     "mlops.yaml:5: schedule of 'training' in dev needs one of cron and interval"),
    ("      - pipeline: training\n        interval: 90.5\n",
     "mlops.yaml:6: interval must be a whole number of seconds, at least 1s, got 90.5"),
    ("      - pipeline: training\n        interval: soon\n",
     "mlops.yaml:6: interval must be a duration like 30s"),
    ("      - pipeline: training\n        interval: 1h\n        max_concurrency: 11\n",
     "mlops.yaml:7: max_concurrency must be at most 10 (Kubeflow Pipelines' limit), got 11"),
    ("      - pipeline: training\n        interval: 1h\n        max_concurrency: 0\n",
     "mlops.yaml:7: max_concurrency must be a whole number of at least 1"),
    ("      - pipeline: training\n        interval: 1h\n        parameters: [c]\n",
     "mlops.yaml:7: parameters must be a mapping of parameter names to values"),
    ("      - pipeline: training\n        interval: 1h\n        parameters:\n"
     "          day: !!timestamp 2024-01-01\n",
     "mlops.yaml:7: parameters: day must be a string, number, boolean, list or mapping "
     "(quote dates and times)"),
    ("      - pipeline: training\n        interval: 1h\n        parameters:\n"
     "          c: .nan\n", "mlops.yaml:7: parameters: c must be a finite number"),
    ("      - pipeline: training\n        interval: 1h\n        catchup: maybe\n",
     "mlops.yaml:7: catchup must be true or false"),
    ("      - pipeline: training\n        interval: 1h\n        crn: '@daily'\n",
     "mlops.yaml:7: unknown key 'crn' in a schedule of dev; did you mean 'cron'?"),
    ("      - interval: 1h\n",
     "mlops.yaml:5: a schedule of dev is missing required key 'pipeline'"),
    ("      - pipeline: training\n        name: Nightly\n        interval: 1h\n",
     "mlops.yaml:6: name: 'Nightly' is not a Kubernetes name"),
    ("      - {pipeline: training, interval: 1h}\n      - {pipeline: training, cron: '@daily'}\n",
     "mlops.yaml:6: schedule 'training' is listed twice in dev (give each a different name:)"),
    ("      - pipeline: training\n        name: kustomization\n        interval: 1h\n",
     "mlops.yaml:5: a schedule may not be named 'kustomization'"),
]
IDS = ["cron-4-fields", "cron-bad-hour", "cron-and-interval", "neither", "interval-fraction",
       "interval-word", "concurrency-11", "concurrency-0", "parameters-list", "parameter-date",
       "parameter-nan", "catchup-word", "typo", "no-pipeline", "bad-name", "duplicate",
       "reserved-name"]


@pytest.mark.parametrize(("items", "message"), BAD, ids=IDS)
def test_bad_schedules_are_located_config_errors(tmp_path, items, message):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, items)
    assert caught.value.exit_code == 1
    assert "\n" not in caught.value.message and message in caught.value.message


def test_schedules_must_be_a_list(tmp_path):
    (tmp_path / "mlops.yaml").write_text(HEAD.replace("    schedules:\n", "    schedules: 3\n"))
    with pytest.raises(ConfigError, match="mlops.yaml:.*: schedules of dev must be a list"):
        load_config(tmp_path, {})


def test_a_plain_date_parameter_is_the_text_written(tmp_path):
    """YAML would read `2024-01-01` as a date; mlops reads it as written (a timestamp
    tag still asks for a date, refused above)."""
    config = load(tmp_path, "      - pipeline: training\n        interval: 1h\n"
                            "        parameters:\n          day: 2024-01-01\n")
    assert config.environment("dev").schedules[0].parameters == {"day": "2024-01-01"}
