"""Shared set-up for the fault matrix of the registry, the Docker Engine and Prometheus.

The smallest repository a release can go through: one tiny component named
`serve` (so the base InferenceService's `image: serve` is what it pins), the
repository's own `environments/base`, and empty dev/staging/prod overlays.
`Rig` is a bare remote plus a clone of it, made with subprocesses so that it
can live as long as a module; `Rig.project(...)` wraps the clone for one
test's in-process `mlops` runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import (
    REPO_ROOT,
    Project,
    Result,
    git,
    mlops_yaml,
    tiny_component,
    write_files,
)

COMPONENT = "serve"
OVERLAY = ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
           "resources:\n  - ../base\n")
NOT_INHERITED = ("MLOPS_REGISTRY", "MLOPS_PROMETHEUS_URL", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")
GIT_ENV = {"GIT_AUTHOR_NAME": "Test Dev", "GIT_AUTHOR_EMAIL": "dev@example.test",
           "GIT_COMMITTER_NAME": "Test Dev", "GIT_COMMITTER_EMAIL": "dev@example.test"}


def release_repo(registry: str, prod: str = "") -> dict[str, str | bytes]:
    """mlops.yaml (`prod` is added to the prod environment), `serve`, and the overlays."""
    config = mlops_yaml(registry)
    if prod:
        config = config.replace("  - name: prod\n", "  - name: prod\n" + prod)
    files: dict[str, str | bytes] = {"mlops.yaml": config, **tiny_component(COMPONENT)}
    for path in (REPO_ROOT / "environments" / "base").iterdir():
        files[f"environments/base/{path.name}"] = path.read_bytes()
    for env in ("dev", "staging", "prod"):
        files[f"environments/{env}/kustomization.yaml"] = OVERLAY
    return files


class Rig:
    """`remote` (bare) and `clone`, which pushes to it; long-lived, driven by subprocess."""

    def __init__(self, base: Path, files: Mapping[str, str | bytes]) -> None:
        self.base = base
        self.remote = base / "remote.git"
        self.clone = base / "clone"
        git(base, "init", "-q", "--bare", "-b", "main", str(self.remote))
        self.clone.mkdir()
        git(self.clone, "init", "-q", "-b", "main")
        write_files(self.clone, files)
        git(self.clone, "add", "-A")
        self.git_commit("initial")
        git(self.clone, "remote", "add", "origin", str(self.remote))
        git(self.clone, "push", "-q", "origin", "main")
        git(self.clone, "branch", "-q", "--set-upstream-to=origin/main")

    def git_commit(self, message: str) -> None:
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=self.clone,
                       env={**os.environ, **GIT_ENV}, check=True, capture_output=True)

    def mlops(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run `mlops ARGS` in a subprocess (for set-up); fail the test on an error."""
        inherited = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        proc = subprocess.run([sys.executable, "-m", "mlops", *args, "--repo", str(self.clone)],
                              env={**inherited, **GIT_ENV, **(env or {})},
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"set-up `mlops {' '.join(args)}` failed: {proc.stderr[-2000:]}")
        return proc.stdout

    def remote_head(self) -> str:
        return git(self.remote, "rev-parse", "refs/heads/main")

    def remote_log(self) -> list[str]:
        """Subjects on the remote branch, newest first."""
        return git(self.remote, "log", "--format=%s", "refs/heads/main").splitlines()

    def remote_show(self, path: str) -> str:
        return git(self.remote, "show", f"refs/heads/main:{path}")

    def project(self, capsys, monkeypatch) -> Project:
        for key, value in GIT_ENV.items():
            monkeypatch.setenv(key, value)
        return Project(self.clone, capsys, monkeypatch)


def private_tempdir(tmp_path: Path, monkeypatch) -> Path:
    """mlops's temp dirs go to a folder of this test's own, so that other test sessions
    running at the same time cannot look like something this test left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def error_line(result: Result) -> str:
    """The one `mlops: error:` line; fails if there are more, or a traceback."""
    lines = [line for line in result.err.splitlines() if line.startswith("mlops: error:")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    return lines[0]

