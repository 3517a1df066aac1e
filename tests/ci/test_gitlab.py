"""GitLab CI reports (mlops/ci/gitlab.py): log sections, JUnit XML, dotenv.

The formats are GitLab's documented ones: section markers from "CI/CD job
logs", the JUnit elements GitLab reads from "Unit test reports", and the
dotenv subset of `artifacts:reports:dotenv` (KEY=VALUE lines only).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from mlops.ci import gitlab
from mlops.ci.gitlab import Check, GitLabReporter
from tests.conftest import tiny_component

ROOT = Path(__file__).resolve().parents[2]
ANALYSIS = {"env": "prod", "release": "r-1", "percent": 10, "result": "fail",
            "metrics": [{"metric": "error-rate", "result": "fail", "detail": "0.2 > max 0.01"}],
            "offline": [{"gate": "roc_auc-threshold", "result": "pass", "detail": "0.99"}]}


# -- pure rendering ---------------------------------------------------------------


def test_a_section_is_delimited_by_gitlabs_markers():
    text = gitlab.section("rollout analyze", "release r-1", [Check("gate g", True, "0.9")],
                          1700000000, bad=False)
    assert text == (
        "\x1b[0Ksection_start:1700000000:mlops_rollout_analyze[collapsed=true]\r\x1b[0K"
        "mlops rollout analyze: ok (release r-1)\n"
        "  pass  gate g: 0.9\n"
        "\x1b[0Ksection_end:1700000000:mlops_rollout_analyze\r\x1b[0K\n")


def test_a_failed_section_stays_open_and_a_detail_cannot_break_its_lines():
    text = gitlab.section("validate", "", [Check("problem 1", False, "a\nb\rc")], 1, bad=True)
    assert "[collapsed=true]" not in text and "mlops validate: failed\n" in text
    assert "  FAIL  problem 1: a b c\n" in text


def test_an_analysis_becomes_test_cases_that_fail_where_it_failed():
    found = gitlab.checks("rollout analyze", ANALYSIS)
    root = ET.fromstring(gitlab.junit("rollout analyze", found))
    suite = root.find("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == \
        ("mlops rollout analyze", "2", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["canary metric error-rate"].find("failure").text == "0.2 > max 0.01"
    assert cases["gate roc_auc-threshold"].find("failure") is None
    assert cases["gate roc_auc-threshold"].find("system-out").text == "0.99"
    assert {c.get("classname") for c in cases.values()} == {"mlops rollout analyze"}


def test_builds_and_numbered_problems_are_test_cases():
    doc = {"ok": False, "builds": [
        {"component": "a", "status": "built", "image": "r/a", "digest": "sha256:1"},
        {"component": "b", "status": "failed", "image": "r/b", "error": "docker build failed"}],
        "problems": [{"where": "x", "message": "m1"}, {"where": "x", "message": "m2"}]}
    assert gitlab.checks("build", doc) == [
        Check("build a", True, "r/a@sha256:1"), Check("build b", False, "docker build failed"),
        Check("problem 1: x", False, "m1"), Check("problem 2: x", False, "m2")]


def test_a_failure_no_entry_shows_fails_the_command_itself():
    aborted = {"env": "prod", "aborted": "error-rate", "gates": [{"gate": "g", "result": "pass"}]}
    assert gitlab.checks("rollout run", aborted)[-1] == Check("mlops rollout run", False, "env prod")
    assert gitlab.checks("init", {"commit": "c"}) == [Check("mlops init", True, "")]


def test_the_junit_report_stays_xml_whatever_a_message_holds():
    detail = "\x1b[31mred\x1b[0m <b> & \"q\" \x00"
    root = ET.fromstring(gitlab.junit("", [Check("mlops", False, detail)]))
    failure = root.find("testsuite/testcase/failure")
    assert failure.text == "?[31mred?[0m <b> & \"q\" ?"
    assert root.find("testsuite").get("name") == "mlops"


def test_dotenv_keeps_gitlabs_subset_and_forgets_the_previous_command():
    old = "MLOPS_RELEASE_ID=r-1\nMLOPS_COMMAND=promote\nMLOPS_EXIT_CODE=4\n# note\n\nJUNK\n"
    new = gitlab.dotenv(old, {"MLOPS_COMMAND": "status", "MLOPS_OUTCOME": "success",
                              "MLOPS_ENVIRONMENT": "two\nlines  here", "LONG": "x" * 300})
    assert new == ("MLOPS_RELEASE_ID=r-1\nMLOPS_COMMAND=status\nMLOPS_OUTCOME=success\n"
                   f"MLOPS_ENVIRONMENT=two lines here\nLONG={'x' * 255}\n")


def test_facts_are_the_scalar_release_environment_and_commit():
    assert gitlab.facts({"release": "r-2", "env": "dev", "commit": "abc", "status": "x"}) == {
        "MLOPS_RELEASE_ID": "r-2", "MLOPS_ENVIRONMENT": "dev", "MLOPS_COMMIT": "abc"}
    assert gitlab.facts({"release": None, "env": True, "commit": ["a"]}) == {}


def test_no_dotenv_variable_is_one_mlops_reads():
    # Later jobs get these as environment variables: none may steer mlops there.
    names = [*gitlab.PER_COMMAND, *(var for _, var in gitlab.FACTS)]
    sources = [p for p in (ROOT / "mlops").rglob("*.py") if p.name != "gitlab.py"]
    text = "\n".join(p.read_text() for p in sources)
    assert [n for n in names if re.search(rf"\b{n}\b", text)] == []


# -- the reporter -------------------------------------------------------------------


def reporter(tmp_path, **environ) -> tuple[GitLabReporter, io.StringIO]:
    stderr = io.StringIO()
    return GitLabReporter({"CI_PROJECT_DIR": str(tmp_path), **environ}, stderr), stderr


def test_each_run_of_a_command_gets_its_own_junit_file(tmp_path):
    ci, _ = reporter(tmp_path, MLOPS_REPORTS_DIR="out")
    ci.result("status", {"ok": True})
    ci.result("status", {"ok": False})
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["junit-status-2.xml", "junit-status.xml", "mlops.env"]
    assert 'failures="1"' in (tmp_path / "out" / "junit-status-2.xml").read_text()


def test_an_error_after_the_result_adds_no_second_junit_file(tmp_path):
    # A refused promotion prints its gate table, then exits 3 with the error.
    ci, _ = reporter(tmp_path, MLOPS_REPORTS_DIR="out")
    ci.result("promote", {"ok": False, "status": "refused", "gates": [
        {"gate": "accuracy-threshold", "result": "fail", "detail": "0.5 >= 0.9 is false"}]})
    ci.error("promote", "1 gate(s) failed", 3)
    ci.error("history", "unknown environment", 2)  # no result of its own: a case of its own
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["junit-history.xml", "junit-promote.xml", "mlops.env"]
    assert 'failures="1"' in (tmp_path / "out" / "junit-promote.xml").read_text()
    assert "MLOPS_EXIT_CODE=2" in (tmp_path / "out" / "mlops.env").read_text()


def test_an_unwritable_report_is_one_warning(tmp_path):
    (tmp_path / "file").write_text("")
    ci, stderr = reporter(tmp_path, MLOPS_REPORTS_DIR="file/reports")
    ci.error("build", "boom", 1)
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 2 and all(line.startswith("mlops: warning: cannot write the GitLab ")
                                   for line in lines)


# -- in the CLI ----------------------------------------------------------------------


BROKEN = {"mlops.yaml": "registry: 127.0.0.1:5000/x\nenvironments:\n  - name: dev\n",
          **tiny_component("train", version="one"),
          "environments/dev/kustomization.yaml": "resources: []\n"}


def test_in_gitlab_ci_validate_writes_a_section_and_both_reports(project, tmp_path):
    repo = project(BROKEN)
    outside = repo.run("validate")
    result = repo.run("validate", env={"GITLAB_CI": "true", "CI_PROJECT_DIR": str(tmp_path)})
    assert result.code == outside.code == 1 and result.out == outside.out
    assert re.search(r"^\x1b\[0Ksection_start:\d+:mlops_validate\r\x1b\[0Kmlops validate: "
                     r"failed\n  FAIL  problem 1: components/train: ", result.err, re.M)
    assert re.search(r"^\x1b\[0Ksection_end:\d+:mlops_validate\r\x1b\[0K$", result.err, re.M)
    reports = tmp_path / "mlops-reports"
    suite = ET.parse(reports / "junit-validate.xml").find("testsuite")
    assert suite.get("failures") == "1" and "version" in suite.find("testcase/failure").text
    assert (reports / "mlops.env").read_text() == "MLOPS_COMMAND=validate\nMLOPS_OUTCOME=failure\n"


def test_in_gitlab_ci_an_error_keeps_its_exit_code_and_one_line(project, tmp_path):
    repo = project(BROKEN)
    result = repo.run("history", "--env", "nope", env={
        "GITLAB_CI": "true", "CI_PROJECT_DIR": str(tmp_path), "MLOPS_REPORTS_DIR": str(tmp_path / "r")})
    assert result.code == 2 and result.err == "mlops: error: unknown environment 'nope' (known: dev)\n"
    assert (tmp_path / "r" / "mlops.env").read_text() == (
        "MLOPS_COMMAND=history\nMLOPS_OUTCOME=error\nMLOPS_EXIT_CODE=2\n")
    failure = ET.parse(tmp_path / "r" / "junit-history.xml").find("testsuite/testcase/failure")
    assert failure.text == result.err.removeprefix("mlops: error: ").rstrip("\n")
