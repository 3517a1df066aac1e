"""Gates fail closed: each failure is exit 3 with its reason, and nothing is pushed."""

from __future__ import annotations

import time

import pytest

from tests.commands.conftest import GOOD, promote, release_of
from tests.support.promotion import Playground, repo_files

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
def soaking(project, built, tmp_path):
    """prod needs 2s of soak in staging, and (to isolate the soak) no approval."""
    files = repo_files(built[0], soak="2s")
    files["mlops.yaml"] = files["mlops.yaml"].replace("approval: true", "approval: false")
    return Playground(tmp_path, project(files))


def test_soak_time_is_read_from_history(soaking, built):
    into_dev(soaking, built)
    assert promote(soaking, "--to", "staging", "--from", "dev", "--metrics",
                   str(soaking.metrics("m", GOOD))).code == 0
    early = promote(soaking, "--to", "prod", "--from", "staging")
    assert early.code == 3 and "soak: in staging for" in early.err and "needs 2s" in early.err
    time.sleep(2.2)
    late = promote(soaking, "--to", "prod", "--from", "staging")
    assert late.code == 0, late.err
    assert {g["gate"] for g in release_of(soaking, "prod")["gates"]} == {
        "roc_auc-threshold", "soak"}
