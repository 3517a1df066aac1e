"""Run records: ids, the one parse, listing and comparing (pure)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mlops.core import runs
from mlops.core.runs import CorruptRun, RunRecord
from mlops.errors import UsageError

DIGEST = "sha256:" + "ab" * 32


def record(run_id="20250101T120000-aaaaaa", **changes) -> RunRecord:
    fields = dict(
        id=run_id, pipeline="training", env="dev", version="training-0123456789",
        started="2025-01-01T12:00:00Z", duration_s=83.2,
        images={"train": f"reg.example/ns/train@{DIGEST}"},
        parameters={"c": 1.0, "max_iter": 200}, metrics={"accuracy": 0.958, "f1": 0.96},
        model_uri="file:///tmp/model", source_commit="a" * 40)
    return RunRecord(**{**fields, **changes})


def test_an_id_is_the_utc_start_and_six_hex_digits():
    started = dt.datetime(2025, 3, 4, 6, 7, 8, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert runs.make_id(started, "1a2b3c4d") == "20250304T040708-1a2b3c"


@pytest.mark.parametrize("text", [
    "../20250101T120000-aaaaaa", "20250101T120000-aaaaaa/..", "..", "20250101T120000-AAAAAA",
    "20250101T120000-aaaaa", "2025-01-01T12:00:00-aaaaaa", "", "20250101T120000-aaaaaa.json",
])
def test_a_bad_id_is_a_usage_error_before_it_becomes_a_path(text):
    assert not runs.is_id(text)
    with pytest.raises(UsageError, match="is not a run id"):
        runs.check_id(text)


def test_a_record_dumps_and_parses_back_through_json():
    original = record()
    assert runs.parse(json.loads(json.dumps(original.dump()))) == original


@pytest.mark.parametrize(("change", "message"), [
    ({"format": "other"}, "format is 'other'"),
    ({"id": "../x"}, "id '../x' is not a run id"),
    ({"pipeline": 3}, "pipeline must be a non-empty string"),
    ({"started": "yesterday"}, "not an ISO 8601 time"),
    ({"started": "2025-01-01T12:00:00"}, "has no time zone"),
    ({"duration_s": -1}, "duration_s must be"),
    ({"duration_s": True}, "duration_s must be"),
    ({"duration_s": 1e308}, "duration_s must be a number of seconds from 0 to 316224000"),
    ({"duration_s": 316224001}, "duration_s must be"),  # ten years and a second
    ({"duration_s": float("inf")}, "duration_s must be"),
    ({"duration_s": float("nan")}, "duration_s must be"),
    ({"duration_s": "83"}, "duration_s must be"),
    ({"metrics": {"accuracy": "high"}}, "metrics.accuracy has an invalid value"),
    ({"metrics": {"accuracy": float("nan")}}, "metrics.accuracy has an invalid value"),
    ({"parameters": {"c": [1]}}, "parameters.c has an invalid value"),
    ({"images": []}, "images must be a JSON object"),
    ({"model_uri": 5}, "model_uri must be a string or null"),
])
def test_a_corrupt_record_says_what_is_wrong(change, message):
    with pytest.raises(CorruptRun, match=message):
        runs.parse({**record().dump(), **change})


def test_a_record_that_is_no_object_is_corrupt():
    with pytest.raises(CorruptRun, match="not a JSON object"):
        runs.parse([1, 2])


def test_parameters_are_the_defaults_with_the_arguments_over_them():
    declared = {
        "c": {"defaultValue": 1.0, "parameterType": "NUMBER_DOUBLE"},
        "max_iter": {"defaultValue": 200.0, "parameterType": "NUMBER_INTEGER"},
        "name": {"parameterType": "STRING"},  # no default, not given: not recorded
    }
    assert runs.effective_parameters(declared, {"c": 0.5}) == {"c": 0.5, "max_iter": 200}
    assert isinstance(runs.effective_parameters(declared, {})["max_iter"], int)


def test_step_images_drop_kfps_exec_prefix():
    assert runs.step_images({"exec-train": "img@x", "exec-evaluate": "e@y"}) == {
        "train": "img@x", "evaluate": "e@y"}


def test_select_filters_and_lists_newest_first():
    old = record("20250101T120000-aaaaaa")
    new = record("20250102T120000-bbbbbb", started="2025-01-02T12:00:00Z")
    other = record("20250103T120000-cccccc", started="2025-01-03T12:00:00Z", env="staging",
                   pipeline="scoring")
    assert runs.select([old, other, new]) == [other, new, old]
    assert runs.select([old, other, new], pipeline="training") == [new, old]
    assert runs.select([old, other, new], env="staging") == [other]
    assert runs.select([old, other, new], pipeline="training", env="staging") == []


def test_the_list_shows_one_line_a_run_with_its_first_metrics():
    many = {f"m{i}": i / 10 for i in range(6)}
    text = runs.format_list([record(), record("20250102T120000-bbbbbb", metrics=many,
                                              duration_s=4.25)])
    first, second = text.splitlines()
    assert first.split()[:5] == ["20250101T120000-aaaaaa", "training", "dev",
                                 "2025-01-01T12:00:00Z", "83s"]
    assert first.endswith("accuracy=0.958 f1=0.96")
    assert "4.2s" in second and second.endswith("m3=0.3 (+2)")
    assert "no runs recorded" in runs.format_list([])


def test_compare_marks_the_rows_that_differ():
    a = record()
    b = record("20250102T120000-bbbbbb", started="2025-01-02T12:00:00Z",
               parameters={"c": 0.5, "max_iter": 200.0, "seed": 7},
               metrics={"accuracy": 0.958, "f1": 0.97})
    rows = runs.compare([a, b])
    params = {row.name: row for row in rows["parameters"]}
    assert params["c"].differs and params["c"].values == (1.0, 0.5)
    assert not params["max_iter"].differs  # 200 and 200.0 are the same number
    assert params["seed"].differs and params["seed"].values == (None, 7)
    metrics = {row.name: row.differs for row in rows["metrics"]}
    assert metrics == {"accuracy": False, "f1": True}
    assert [row.differs for row in rows["images"]] == [False]


def test_true_and_one_differ():
    rows = runs.compare([record(parameters={"flag": True}), record(parameters={"flag": 1})])
    assert rows["parameters"][0].differs


def test_the_compare_table_puts_runs_side_by_side():
    a = record()
    b = record("20250102T120000-bbbbbb", parameters={"c": 0.5, "max_iter": 200},
               images={"train": f"reg.example/ns/train@sha256:{'cd' * 32}"})
    lines = runs.format_compare([a, b]).splitlines()
    assert lines[0].split() == [a.id, b.id]
    c_row = next(line for line in lines if line.split()[1:2] == ["c"])
    assert c_row.split() == ["*", "c", "1", "0.5"]
    iter_row = next(line for line in lines if "max_iter" in line)
    assert iter_row.split() == ["max_iter", "200", "200"] and not iter_row.startswith("*")
    train = next(line for line in lines if line.split()[1:2] == ["train"])
    assert train.split() == ["*", "train", "train@sha256:abababababab",
                             "train@sha256:cdcdcdcdcdcd"]
    assert lines[-1] == "(* values differ)"


def test_the_comparison_document_has_every_section_and_counts_differences():
    a, b = record(), record("20250102T120000-bbbbbb", metrics={"accuracy": 0.9, "f1": 0.96})
    doc = runs.comparison_document([a, b])
    assert doc["runs"] == [a.id, b.id]
    assert {"run", "parameters", "metrics", "images"} <= doc.keys()
    assert {"name": "accuracy", "values": [0.958, 0.9], "differs": True} in doc["metrics"]
    assert doc["differences"] == 1  # the ids differ, the records otherwise only in accuracy
    json.dumps(doc)  # plain data


def test_short_image_keeps_a_tag_or_a_bare_name():
    assert runs.short_image("reg/ns/train:1.0") == "train:1.0"
    assert runs.short_image("reg/ns/train@sha256:" + "0" * 64) == "train@sha256:000000000000"


def test_the_compare_table_shortens_commits_and_long_model_uris():
    long_uri = "file:///home/someone/projects/ml/.mlops/runs/dev/training/model"
    text = runs.format_compare([record(model_uri=long_uri), record(model_uri="file:///m")])
    model = next(line for line in text.splitlines() if "model_uri" in line)
    assert model.split() == ["*", "model_uri", "..." + long_uri[-37:], "file:///m"]
    commit = next(line for line in text.splitlines() if "source_commit" in line)
    assert commit.split() == ["source_commit", "a" * 12, "a" * 12]
