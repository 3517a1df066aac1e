"""Job summaries and annotations for GitHub Actions (mlops/ci/github.py)."""

import io
import json

import pytest

from mlops.ci import github as ghsummary
from mlops.output import Output


def test_an_annotation_stays_one_line_and_escapes_its_properties():
    line = ghsummary.annotation("50% failed:\nsee log", file="a,b:c.yaml")
    assert line == "::error file=a%2Cb%3Ac.yaml::50%25 failed:%0Asee log"


def test_an_analysis_document_becomes_a_table_of_metrics_and_offline_gates():
    doc = {"env": "prod", "release": "r-1", "percent": 10, "result": "fail",
           "metrics": [{"metric": "error-rate", "result": "fail", "detail": "0.2 > max 0.01"}],
           "offline": [{"gate": "roc_auc-threshold", "result": "pass", "detail": "0.99"}]}
    text = ghsummary.markdown("rollout analyze", doc)
    assert text.startswith("### ❌ `mlops rollout analyze`\n\n")
    assert "**release:** `r-1` · **environment:** `prod` · **analysis:** `fail` · " \
           "**canary %:** `10`" in text
    assert "| error-rate | fail | 0.2 > max 0.01 |" in text
    assert "| roc_auc-threshold | pass | 0.99 |" in text


def test_a_fanout_plan_shows_its_shards():
    doc = {"kind": "mlops-build-plan", "source_commit": "a" * 40, "shards": 2,
           "matrix": {"include": [{"shard": 0, "components": "big", "size": 40.0},
                                  {"shard": 1, "components": "mid small", "size": 39.0}]}}
    text = ghsummary.markdown("build", doc)
    assert "| shard | components | size |" in text
    assert "| 0 | big | 40.0 |\n| 1 | mid small | 39.0 |" in text
    assert ghsummary.markdown("build", {**doc, "matrix": {"include": []}}).count("|") == 0


def test_cells_cannot_break_the_table():
    text = ghsummary.markdown("promote", {"gates": [{"gate": "a|b", "result": "pass",
                                                      "detail": "x\ny"}]})
    assert "| a\\|b | pass | x y |" in text


def test_a_long_commit_is_shortened_and_an_error_names_its_exit_code():
    assert "**commit:** `0123456789ab`" in ghsummary.markdown("approve", {"commit": "0123456789ab" * 3 + "0123"})
    assert ghsummary.error_markdown("", "bad", 2) == "### ❌ `mlops` failed (exit 2)\n\nbad\n\n"


@pytest.mark.parametrize("json_mode", [False, True])
def test_a_failed_command_gets_one_summary_section(tmp_path, json_mode):
    summary = tmp_path / "summary.md"
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(json_mode, stdout, stderr, {"GITHUB_STEP_SUMMARY": str(summary)})
    out.command = "history"
    out.error("cannot clone http://***@127.0.0.1/r.git", 1)
    assert summary.read_text().count("### ") == 1
    assert "mlops history" in summary.read_text() and "exit 1" in summary.read_text()
    if json_mode:
        assert json.loads(stdout.getvalue())["exit_code"] == 1


def test_in_github_actions_an_error_is_an_annotation_then_a_summary_section(tmp_path):
    summary = tmp_path / "summary.md"
    stderr = io.StringIO()
    out = Output(False, io.StringIO(), stderr,
                 {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    out.command = "build"
    out.error("50% failed", 1)
    assert stderr.getvalue() == "mlops: error: 50% failed\n::error::50%25 failed\n"
    assert summary.read_text() == "### ❌ `mlops build` failed (exit 1)\n\n50% failed\n\n"


def test_an_unwritable_summary_is_one_warning(tmp_path):
    stderr = io.StringIO()
    out = Output(False, io.StringIO(), stderr, {"GITHUB_STEP_SUMMARY": str(tmp_path)})
    out.command = "status"
    out.result({"ok": True}, "fine")
    assert stderr.getvalue() == "mlops: warning: cannot write the job summary: Is a directory\n"
