"""The CI system a command runs in, and how its results show there.

`output.Output` prints a command's result and errors; a `CiReporter` adds what
the CI system shows beside the log (GitHub's job summary and annotations,
GitLab's log sections and report artifacts). `detect` picks one from the
environment, or none outside CI. A new CI system is one module here with a
class that has the three methods of `CiReporter`, and one line in `detect`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TextIO


class CiReporter(Protocol):
    def result(self, command: str, document: Mapping[str, Any]) -> None:
        """A command's result document (what it prints with --json)."""

    def error(self, command: str, message: str, exit_code: int) -> None:
        """A failure, after its one line is on stderr; `command` may be ""."""

    def annotate(self, message: str, file: str | None = None) -> None:
        """A problem worth flagging on the run itself, optionally tied to `file`."""


def detect(environ: Mapping[str, str], stderr: TextIO) -> CiReporter | None:
    """The reporter for the CI system `environ` comes from; None outside CI.

    GitHub first: a job summary file alone counts too (tests and local runs
    set only GITHUB_STEP_SUMMARY), as it did before there was a second system.
    A system's module is imported only when its variables are set: outside CI,
    every command (and `mlops --help`) starts without them.
    """
    if environ.get("GITHUB_ACTIONS") == "true" or environ.get("GITHUB_STEP_SUMMARY"):
        from mlops.ci import github

        return github.GitHubReporter(environ, stderr)
    if environ.get("GITLAB_CI") == "true":
        from mlops.ci import gitlab

        return gitlab.GitLabReporter(environ, stderr)
    return None
