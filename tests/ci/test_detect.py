"""Choosing the CI reporter from the environment (mlops/ci/__init__.py), and
`output.Output` reaching the CI system only through it."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest

from mlops import ci
from mlops.ci.github import GitHubReporter
from mlops.ci.gitlab import GitLabReporter
from mlops.output import Output

OUTPUT_PY = Path(__file__).resolve().parents[2] / "mlops" / "output.py"


@pytest.mark.parametrize("environ, expected", [
    ({"GITHUB_ACTIONS": "true"}, GitHubReporter),
    ({"GITHUB_STEP_SUMMARY": "/tmp/summary.md"}, GitHubReporter),  # as before: a file alone
    ({"GITLAB_CI": "true", "CI_PROJECT_DIR": "/builds/x"}, GitLabReporter),
    ({"GITLAB_CI": "false"}, type(None)),
    ({"CI": "true"}, type(None)),  # some other CI: nothing beyond the log
    ({}, type(None)),
])
def test_the_reporter_follows_the_environment(environ, expected):
    assert type(ci.detect(environ, io.StringIO())) is expected


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def result(self, command, document):
        self.calls.append(("result", command, dict(document)))

    def error(self, command, message, exit_code):
        self.calls.append(("error", command, message, exit_code))

    def annotate(self, message, file=None):
        self.calls.append(("annotate", message, file))


def test_output_hands_results_errors_and_annotations_to_the_reporter(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(ci, "detect", lambda environ, stderr: recorder)
    stderr = io.StringIO()
    out = Output(False, io.StringIO(), stderr, {})
    out.result({"ok": True}, "fine")  # no command parsed yet: nothing to report
    out.command = "validate"
    out.result({"ok": False}, "bad")
    out.annotate("x.yaml:1: bad", file="x.yaml")
    out.error("boom", 3)
    assert recorder.calls == [("result", "validate", {"ok": False}),
                              ("annotate", "x.yaml:1: bad", "x.yaml"),
                              ("error", "validate", "boom", 3)]
    assert stderr.getvalue() == "mlops: error: boom\n"  # the reporter adds nothing here


def test_outside_ci_output_reports_nothing_extra():
    stderr = io.StringIO()
    out = Output(False, io.StringIO(), stderr, {})
    out.command = "validate"
    out.result({"ok": False}, "bad")
    out.annotate("bad")
    out.error("boom", 1)
    assert out.ci is None and stderr.getvalue() == "mlops: error: boom\n"


def test_output_names_no_ci_system():
    # The seam: output.py imports the package, never a CI system's module or variable.
    source = OUTPUT_PY.read_text()
    imports = {ast.unparse(node) for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Import | ast.ImportFrom)}
    assert "from mlops import ci" in imports
    assert not [i for i in imports if "github" in i or "gitlab" in i]
    assert "GITHUB" not in source and "GITLAB" not in source
