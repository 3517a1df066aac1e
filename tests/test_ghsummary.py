"""Job summaries and annotations for GitHub Actions (mlops/ghsummary.py)."""

from mlops import ghsummary


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


def test_cells_cannot_break_the_table():
    text = ghsummary.markdown("promote", {"gates": [{"gate": "a|b", "result": "pass",
                                                      "detail": "x\ny"}]})
    assert "| a\\|b | pass | x y |" in text


def test_a_long_commit_is_shortened_and_an_error_names_its_exit_code():
    assert "**commit:** `0123456789ab`" in ghsummary.markdown("approve", {"commit": "0123456789ab" * 3 + "0123"})
    assert ghsummary.error_markdown("", "bad", 2) == "### ❌ `mlops` failed (exit 2)\n\nbad\n\n"
