"""Fixtures for command tests that promote: images built once, a playground per test."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import yaml

from tests.conftest import git
from tests.support.promotion import Playground, repo_files

GOOD = {"accuracy": 0.95, "f1": 0.94, "roc_auc": 0.97}


def build_repo(base, ns: str, *build_args: str):
    """A committed repo of the tiny components for registry namespace `ns`, built and
    pushed by `mlops build` (with `build_args`); (repo, build record)."""
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for rel, content in repo_files(ns).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "init")
    out = base / "build.json"
    proc = subprocess.run([sys.executable, "-m", "mlops", "build", "--repo", str(repo),
                           "--output", str(out), *build_args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return repo, out


@pytest.fixture(scope="session")
def built(tmp_path_factory, registry_server, docker_engine):
    """Build and push the tiny components once; return (registry namespace, build.json)."""
    ns = f"{registry_server.host}/promo{uuid.uuid4().hex[:8]}"
    _, out = build_repo(tmp_path_factory.mktemp("promo-build"), ns)
    return ns, out


@pytest.fixture
def play(project, built, tmp_path):
    ns, _ = built
    return Playground(tmp_path, project(repo_files(ns)))


def promote(play, *args):
    return play.proj.run("promote", *args)


def to_staging(play, built, metrics=GOOD):
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    result = promote(play, "--to", "staging", "--from", "dev",
                     "--metrics", str(play.metrics("m", metrics)))
    assert result.code == 0, result.err
    return result


def release_of(play, env: str) -> dict:
    return yaml.safe_load(play.remote_show(f"environments/{env}/release.yaml"))
