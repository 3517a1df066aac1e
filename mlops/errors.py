"""The one error family of mlops, and the exit codes it maps to.

Every failure that a user should see as a one-line message is an `MlopsError`.
`cli.main` is the only place that turns one into an exit code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_GATE_FAILED = 3
EXIT_APPROVAL = 4
EXIT_INCONCLUSIVE = 5


class MlopsError(Exception):
    """A failure with a one-line message and an exit code."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MlopsError):
    """Bad command line: unknown component, conflicting flags."""

    exit_code = EXIT_USAGE


class ConfigError(MlopsError):
    """Invalid mlops.yaml or component.yaml; message is `file:line: problem`."""


class GitError(MlopsError):
    """A git operation failed or the repository is in an unusable state."""


class RegistryError(MlopsError):
    """The OCI registry refused or could not be reached."""


class TransientRegistryError(RegistryError):
    """A registry failure worth retrying (connection trouble, 5xx, 429)."""


class BuildError(MlopsError):
    """An image build, test or push failed."""


class GateFailed(MlopsError):
    exit_code = EXIT_GATE_FAILED


class ApprovalError(MlopsError):
    exit_code = EXIT_APPROVAL


class AnalysisInconclusive(MlopsError):
    exit_code = EXIT_INCONCLUSIVE
