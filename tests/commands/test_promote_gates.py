"""Gates fail closed: each failure is exit 3 with its reason, and nothing is pushed."""

from __future__ import annotations

import json
import time

import pytest

from tests.commands.conftest import GOOD, promote, release_of, to_staging
from tests.support.promotion import Playground, repo_files, ssh_key

pytestmark = pytest.mark.usefixtures("docker_engine")


def into_dev(play, built):
    result = promote(play, "--to", "dev", "--build", str(built[1]))
    assert result.code == 0, result.err


@pytest.mark.parametrize(("metrics", "message"), [
    ({**GOOD, "accuracy": 0.5}, "accuracy-threshold: accuracy 0.5 >= 0.9 is false"),
    ({"f1": 0.9, "roc_auc": 0.9}, "accuracy-threshold: accuracy is missing from the evaluation"),
    ('{"accuracy": NaN, "roc_auc": 0.9}', "accuracy-threshold: accuracy is NaN"),
    ("not json at all", "is unreadable"),
    ('{"accuracy": "high"}', "'accuracy' is not a number"),
], ids=["below-threshold", "missing-metric", "nan", "unreadable", "not-a-number"])
def test_failing_gate_blocks_the_promotion(play, built, metrics, message):
    into_dev(play, built)
    head = play.remote_head()
    result = promote(play, "--to", "staging", "--from", "dev",
                     "--metrics", str(play.metrics("m", metrics)))
    assert result.code == 3, result.err
    assert message in result.err and result.err.count("\n") == 1
    assert play.remote_head() == head and play.proj.status() == ""


def test_missing_metrics_file_fails_closed(play, built):
    into_dev(play, built)
    result = promote(play, "--to", "staging", "--from", "dev",
                     "--metrics", str(play.base / "nope.json"))
    assert result.code == 3 and "metrics file" in result.err and "not found" in result.err


def record_run(play, metrics) -> str:
    """A run recorded in the developer's clone, as `mlops run` records one; its id."""
    from mlops.services import runstore

    fields = dict(pipeline="training", env="dev", version="training-0123456789", images={},
                  parameters={"c": 0.5}, metrics=metrics, model_uri=None)
    return runstore.record(play.clone, runstore.start(), **fields).id


def test_metrics_of_a_recorded_run_by_its_id(play, built):
    into_dev(play, built)
    worse, good = record_run(play, {**GOOD, "accuracy": 0.5}), record_run(play, GOOD)
    head = play.remote_head()
    refused = promote(play, "--to", "staging", "--from", "dev", "--metrics", worse)
    assert refused.code == 3 and "accuracy 0.5 >= 0.9 is false" in refused.err
    assert play.remote_head() == head
    result = promote(play, "--to", "staging", "--from", "dev", "--metrics", good)
    assert result.code == 0, result.err
    assert release_of(play, "staging")["metrics"] == GOOD


def test_a_run_id_with_no_record_fails_closed_naming_both(play, built):
    into_dev(play, built)
    result = promote(play, "--to", "staging", "--from", "dev",
                     "--metrics", "20990101T000000-abcdef")
    assert result.code == 3 and result.err.count("\n") == 1
    assert ("no metrics file 20990101T000000-abcdef and no run 20990101T000000-abcdef "
            "recorded under .mlops/runs/") in result.err


def test_no_metrics_at_all_fails_the_threshold(play, built):
    into_dev(play, built)
    result = promote(play, "--to", "staging", "--from", "dev")
    assert result.code == 3 and "accuracy is missing" in result.err


def test_regression_against_the_champion(play, built):
    into_dev(play, built)
    assert promote(play, "--to", "staging", "--from", "dev", "--metrics",
                   str(play.metrics("a", {**GOOD, "accuracy": 0.97}))).code == 0
    worse = {**GOOD, "accuracy": 0.94}  # above the 0.9 threshold, 0.03 below the champion
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(play.metrics("b", worse))).code == 0
    head = play.remote_head()
    result = promote(play, "--to", "staging", "--from", "dev")
    assert result.code == 3, result.err
    assert "accuracy-vs-champion: accuracy 0.94 vs champion 0.97: change -0.03" in result.err
    assert play.remote_head() == head
    within = {**GOOD, "accuracy": 0.96}  # -0.01: allowed by min_absolute_change -0.02
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(play.metrics("c", within))).code == 0
    assert promote(play, "--to", "staging", "--from", "dev").code == 0
    gates = {g["gate"]: g["result"] for g in release_of(play, "staging")["gates"]}
    assert gates == {"accuracy-threshold": "pass", "accuracy-vs-champion": "pass"}


@pytest.fixture
def guarded(project, built, tmp_path):
    """staging's regression gate is a guardrail instead: latency at most 10% worse."""
    files = repo_files(built[0])
    files["mlops.yaml"] = files["mlops.yaml"].replace(
        "      - metric: accuracy\n        min_absolute_change: -0.02\n",
        "      - metric: latency_ms\n        greater_is_better: false\n"
        "        max_relative_drop: 0.1\n")
    assert "max_relative_drop" in files["mlops.yaml"]
    return Playground(tmp_path, project(files))


def test_max_relative_drop_against_the_champion(guarded, built):
    into_dev(guarded, built)
    assert promote(guarded, "--to", "staging", "--from", "dev", "--metrics",
                   str(guarded.metrics("a", {**GOOD, "latency_ms": 100}))).code == 0
    first = {g["gate"]: g["detail"] for g in release_of(guarded, "staging")["gates"]}
    assert first["latency_ms-max-drop"] == "no champion yet in the target environment"
    slower = {**GOOD, "latency_ms": 120}  # 20% slower than the champion: more than 10%
    assert promote(guarded, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(guarded.metrics("b", slower))).code == 0
    head = guarded.remote_head()
    result = promote(guarded, "--to", "staging", "--from", "dev")
    assert result.code == 3, result.err
    assert ("latency_ms-max-drop: latency_ms 120 vs champion 100: drop +20.0000%, "
            "allows at most 10.0000%") in result.err and result.err.count("\n") == 1
    assert guarded.remote_head() == head and guarded.proj.status() == ""
    within = {**GOOD, "latency_ms": 105}  # 5% slower: allowed, and no improvement needed
    assert promote(guarded, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(guarded.metrics("c", within))).code == 0
    result = promote(guarded, "--to", "staging", "--from", "dev")
    assert result.code == 0, result.err
    gates = {g["gate"]: g["result"] for g in release_of(guarded, "staging")["gates"]}
    assert gates == {"accuracy-threshold": "pass", "latency_ms-max-drop": "pass"}


@pytest.fixture
def soaking(project, built, tmp_path):
    """prod needs 5s of soak in staging, and (to isolate the soak) no approval. 5s, not
    less: the commit time has whole seconds, and the early promotion clones and compiles
    before its gate looks (about 1 s here, more on a busy machine)."""
    files = repo_files(built[0], soak="5s")
    files["mlops.yaml"] = files["mlops.yaml"].replace("approval: true", "approval: false")
    return Playground(tmp_path, project(files))


def test_soak_time_is_read_from_history(soaking, built):
    into_dev(soaking, built)
    assert promote(soaking, "--to", "staging", "--from", "dev", "--metrics",
                   str(soaking.metrics("m", GOOD))).code == 0
    early = promote(soaking, "--to", "prod", "--from", "staging")
    assert early.code == 3 and "soak: in staging for" in early.err and "needs 5s" in early.err
    time.sleep(5.2)
    late = promote(soaking, "--to", "prod", "--from", "staging")
    assert late.code == 0, late.err
    assert {g["gate"] for g in release_of(soaking, "prod")["gates"]} == {
        "roc_auc-threshold", "soak"}


def error_document(result, code: int) -> str:
    """Under --json a command that fails before printing its result prints exactly one
    document on stdout, the error's, and the same one line on stderr; that line."""
    assert result.code == code, result.err
    [line] = result.err.splitlines()
    assert line.startswith("mlops: error: "), line
    assert json.loads(result.out) == {  # one document: a second one is "Extra data"
        "ok": False, "error": line.removeprefix("mlops: error: "), "exit_code": code}
    return line


def test_a_promotion_its_gates_refuse_prints_the_gate_table_and_exits_3(play, built):
    into_dev(play, built)
    head = play.remote_head()
    metrics = str(play.metrics("m", {**GOOD, "accuracy": 0.5}))
    result = promote(play, "--to", "staging", "--from", "dev", "--metrics", metrics, "--json")
    # The result is printed first and stays the one document: every gate, not only the
    # first that failed (what a CI summary shows), "ok": false and no commit.
    assert result.code == 3, result.err
    [line] = result.err.splitlines()
    assert "1 gate(s) failed; accuracy-threshold: accuracy 0.5 >= 0.9 is false" in line
    doc = result.json
    assert doc["ok"] is False and doc["status"] == "refused" and doc["commit"] is None
    verdicts = {g["gate"]: g["result"] for g in doc["gates"]}
    assert verdicts["accuracy-threshold"] == "fail" and "pass" in verdicts.values(), verdicts
    assert doc["env"] == "staging" and doc["from"] == "dev" and doc["release"].startswith("r-")
    assert play.remote_head() == head and play.proj.status() == ""
    human = promote(play, "--to", "staging", "--from", "dev", "--metrics", metrics)
    assert human.code == 3 and human.err.splitlines() == [line], human.err
    assert human.out.startswith(f"refused: release {doc['release']} from dev to staging")
    assert "fail accuracy-threshold: accuracy 0.5 >= 0.9 is false" in human.out
    assert play.remote_head() == head


@pytest.fixture
def signed(project, built, tmp_path):
    """prod's release manager alice has a key in the trust root, and has approved nothing."""
    _, public = ssh_key(tmp_path, "alice")
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"alice@example.com {public}\n"}
    return Playground(tmp_path, project(files))


def test_a_missing_approval_under_json_prints_the_error_document(signed, built):
    play = signed
    to_staging(play, built)
    head = play.remote_head()
    result = promote(play, "--to", "prod", "--from", "staging", "--json")
    line = error_document(result, 4)
    staging = release_of(play, "staging")["id"]
    assert staging in line and "none found" in line, line
    assert play.remote_head() == head and play.proj.status() == ""
    # A plan is the result itself: printed first, it stays the one document, exit 4 still.
    plan = promote(play, "--to", "prod", "--from", "staging", "--plan", "--json")
    assert plan.code == 4 and plan.err.splitlines() == [line], plan.err
    assert plan.json["status"] == "planned" and plan.json["approval"]["release"] == staging
    assert "ok" not in plan.json and play.remote_head() == head
