"""`mlops runs list` and `mlops runs compare` on recorded run files in a real git repo."""

from __future__ import annotations

import json

import pytest

from tests.conftest import mlops_yaml

DIGEST_A, DIGEST_B = "sha256:" + "a1" * 32, "sha256:" + "b2" * 32
OLD, NEW, SCORING = ("20250101T120000-aaaaaa", "20250102T090000-bbbbbb",
                     "20250103T100000-cccccc")


def run_record(run_id: str, **changes) -> dict:
    day = run_id[6:8]
    record = {
        "format": "mlops.run/v1", "id": run_id, "pipeline": "training", "env": "dev",
        "version": "training-0123456789", "started": f"2025-01-{day}T{run_id[9:11]}:00:00Z",
        "duration_s": 93.5,
        "images": {"train": f"127.0.0.1:5000/ns/train@{DIGEST_A}",
                   "evaluate": f"127.0.0.1:5000/ns/evaluate@{DIGEST_A}"},
        "parameters": {"c": 1.0, "max_iter": 200, "seed": 42},
        "metrics": {"accuracy": 0.958, "f1": 0.966, "roc_auc": 0.995},
        "model_uri": f"file:///repo/.mlops/runs/dev/training/model-{run_id}",
        "source_commit": "c" * 40,
    }
    return {**record, **changes}


@pytest.fixture
def repo(project):
    proj = project({"README.md": "runs\n", "mlops.yaml": mlops_yaml("127.0.0.1:5000/ns")})
    records = [
        run_record(OLD),
        run_record(NEW, parameters={"c": 0.5, "max_iter": 200, "seed": 42},
                   metrics={"accuracy": 0.965, "f1": 0.966, "roc_auc": 0.996},
                   images={"train": f"127.0.0.1:5000/ns/train@{DIGEST_B}",
                           "evaluate": f"127.0.0.1:5000/ns/evaluate@{DIGEST_A}"}),
        run_record(SCORING, pipeline="scoring", env="staging"),
    ]
    proj.write({f".mlops/runs/{r['id']}.json": json.dumps(r) for r in records})
    proj.write({".mlops/runs/dev/training/run.json": "{}",  # a run's outputs, not a record
                ".mlops/runs/notes.json": "not a record, not named like one"})
    return proj


def test_list_shows_every_run_newest_first(repo):
    result = repo.run("runs", "list")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert [line.split()[0] for line in lines] == [SCORING, NEW, OLD]
    assert lines[1].split()[1:5] == ["training", "dev", "2025-01-02T09:00:00Z", "94s"]
    assert "accuracy=0.965" in lines[1] and "roc_auc=0.996" in lines[1]


def test_list_filters_by_pipeline_and_environment(repo):
    assert [line.split()[0] for line in
            repo.run("runs", "list", "--pipeline", "training").out.splitlines()] == [NEW, OLD]
    assert [line.split()[0] for line in
            repo.run("runs", "list", "--env", "staging").out.splitlines()] == [SCORING]
    result = repo.run("runs", "list", "--pipeline", "training", "--env", "staging")
    assert result.code == 0 and result.out.startswith("no runs recorded")


def test_list_refuses_an_environment_that_is_not_configured(repo):
    result = repo.run("runs", "list", "--env", "stagign")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "unknown environment 'stagign'" in result.err


def test_list_refuses_a_pipeline_mlops_does_not_know(repo):
    """A typo is exit 2, not "no runs recorded"; a path is never a pipeline name."""
    result = repo.run("runs", "list", "--pipeline", "trainnig")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "unknown pipeline 'trainnig' (known: scoring, training)" in result.err
    result = repo.run("runs", "list", "--pipeline", "../training")
    assert result.code == 2 and result.out == ""
    assert "a pipeline is named by its file pipelines/<name>.py" in result.err


def test_list_takes_a_pipeline_file_with_no_runs_yet_by_either_spelling(repo):
    repo.write({"pipelines/batch_scoring.py": "# compiled by mlops compile\n"})
    for spelling in ("batch_scoring", "batch-scoring"):
        result = repo.run("runs", "list", "--pipeline", spelling, "--json")
        assert result.code == 0, result.err
        assert result.json["pipeline"] == "batch-scoring" and result.json["runs"] == []


def test_a_run_recorded_under_the_file_spelling_is_listed_by_either_spelling(repo):
    """`mlops run batch_scoring` records the name as typed (found by a review)."""
    repo.write({".mlops/runs/20250104T100000-dddddd.json": json.dumps(
        run_record("20250104T100000-dddddd", pipeline="batch_scoring"))})
    for spelling in ("batch_scoring", "batch-scoring"):  # no pipelines/ file: only the record
        result = repo.run("runs", "list", "--pipeline", spelling, "--json")
        assert result.code == 0, result.err
        assert [r["id"] for r in result.json["runs"]] == ["20250104T100000-dddddd"]
    result = repo.run("runs", "list", "--pipeline", "batch")
    assert result.code == 2 and "(known: batch-scoring, scoring, training)" in result.err


@pytest.mark.parametrize("changes", [
    {"pipeline": "training\n20991231T000000-ffffff  fake  prod"},  # a forged row
    {"env": "dev\x1b[31m"}, {"metrics": {"acc\nuracy": 0.9}},
    {"parameters": {"c\r": 1}}, {"model_uri": "file:///x\x9b2J"}])
def test_a_record_holding_a_control_character_is_corrupt(repo, changes):
    """Found by a bad-input hunt: a newline in a record's pipeline printed a forged row."""
    bad = "20991231T000000-eeeeee"
    repo.write({f".mlops/runs/{bad}.json": json.dumps(run_record(bad, **changes))})
    result = repo.run("runs", "list")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert f"{bad}.json: corrupt run record" in result.err
    assert "control character" in result.err or "invalid value" in result.err
    assert "\x1b" not in result.err and result.out == ""


def test_a_record_that_cannot_be_read_is_corrupt_in_the_list_too(repo):
    (repo.path / ".mlops/runs/20991231T000000-dddddd.json").mkdir()
    result = repo.run("runs", "list")
    assert result.code == 1 and "20991231T000000-dddddd.json: corrupt run record" in result.err


def test_a_runs_folder_that_is_a_file_is_an_error_not_an_empty_list(project):
    proj = project({"mlops.yaml": mlops_yaml("127.0.0.1:5000/ns"), ".mlops/runs": "x\n"})
    result = proj.run("runs", "list")
    assert result.code == 1 and "is not a directory of run records" in result.err


def test_list_json_gives_the_whole_records(repo):
    result = repo.run("runs", "list", "--pipeline", "training", "--json")
    assert result.code == 0, result.err
    doc = result.json
    assert doc["pipeline"] == "training" and doc["env"] is None
    assert [r["id"] for r in doc["runs"]] == [NEW, OLD]
    assert doc["runs"][1] == run_record(OLD)


def test_list_with_nothing_recorded(project):
    proj = project({"README.md": "x\n"})
    result = proj.run("runs", "list", "--json")
    assert result.code == 0 and result.json["runs"] == []


def test_compare_puts_parameters_metrics_and_images_side_by_side(repo):
    result = repo.run("runs", "compare", OLD, NEW)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == [OLD, NEW]
    rows = {line[1:].split()[0]: line for line in lines[1:-1] if line[1:].split()}
    assert rows["c"].split() == ["*", "c", "1", "0.5"]
    assert rows["max_iter"].split() == ["max_iter", "200", "200"]
    assert rows["accuracy"].split() == ["*", "accuracy", "0.958", "0.965"]
    assert rows["f1"].startswith(" ")
    assert rows["train"].split() == ["*", "train", "train@sha256:a1a1a1a1a1a1",
                                     "train@sha256:b2b2b2b2b2b2"]
    assert not rows["evaluate"].startswith("*")


def test_compare_json_is_one_document(repo):
    result = repo.run("runs", "compare", NEW, OLD, "--json")
    assert result.code == 0, result.err
    doc = result.json
    assert doc["runs"] == [NEW, OLD]
    assert {"name": "c", "values": [0.5, 1.0], "differs": True} in doc["parameters"]
    assert {"name": "f1", "values": [0.966, 0.966], "differs": False} in doc["metrics"]
    train = next(row for row in doc["images"] if row["name"] == "train")
    assert train["values"] == [f"127.0.0.1:5000/ns/train@{DIGEST_B}",
                               f"127.0.0.1:5000/ns/train@{DIGEST_A}"]
    assert [r["id"] for r in doc["records"]] == [NEW, OLD]


def test_compare_shows_a_parameter_only_one_run_has(repo):
    repo.write({f".mlops/runs/{NEW}.json": json.dumps(run_record(
        NEW, parameters={"c": 1.0, "max_iter": 200, "seed": 42, "test_size": 0.3}))})
    doc = repo.run("runs", "compare", OLD, NEW, "--json").json
    assert {"name": "test_size", "values": [None, 0.3], "differs": True} in doc["parameters"]


def test_compare_an_unknown_run_is_a_usage_error(repo):
    result = repo.run("runs", "compare", OLD, "20990101T000000-abcdef")
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "unknown run 20990101T000000-abcdef" in result.err and result.out == ""


@pytest.mark.parametrize("bad", ["../20250101T120000-aaaaaa", "dev/training/run",
                                 "20250101T120000-aaaaaa.json", ".."])
def test_compare_refuses_what_is_not_a_run_id(repo, bad):
    result = repo.run("runs", "compare", OLD, bad)
    assert result.code == 2 and "expected a run id" in result.err
    assert result.err.count("\n") == 1


def test_compare_needs_two_runs(repo):
    result = repo.run("runs", "compare", OLD)
    assert result.code == 2 and "at least two run ids" in result.err


@pytest.mark.parametrize(("content", "why"), [
    ("{not json", "corrupt run record"),
    (json.dumps(run_record(NEW, metrics={"accuracy": "high"})), "metrics.accuracy"),
    (json.dumps(run_record(OLD)), f"its id is {OLD}"),  # a record under another's name
])
def test_a_corrupt_record_is_one_line_and_exit_1(repo, content, why):
    repo.write({f".mlops/runs/{NEW}.json": content})
    for args in (("runs", "compare", OLD, NEW), ("runs", "list"), ("runs", "list", "--json")):
        result = repo.run(*args)
        assert result.code == 1, (args, result.err)
        assert why in result.err and f"{NEW}.json" in result.err
        assert result.err.count("\n") == 1
    assert repo.run("runs", "compare", OLD, NEW, "--json").json["ok"] is False


def test_promote_metrics_of_a_corrupt_run_fails_closed(project):
    from tests.conftest import mlops_yaml

    proj = project({"mlops.yaml": mlops_yaml("127.0.0.1:5000/ns"),
                    f".mlops/runs/{NEW}.json": json.dumps(run_record(NEW, metrics=[1]))})
    result = proj.run("promote", "--to", "staging", "--from", "dev", "--metrics", NEW)
    assert result.code == 3 and result.err.count("\n") == 1
    assert f"--metrics {NEW}:" in result.err and "metrics must be a JSON object" in result.err
