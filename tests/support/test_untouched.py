"""The Snapshot helper must see every kind of change it claims to guard."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import git
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")


def make_repo(path):
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a").write_text("x")
    git(path, "add", "a")
    git(path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "i")
    return path


def take(repo, remote, server):
    return Snapshot.take(repo=repo, remote=remote, registry=server)


def test_snapshot_sees_each_kind_of_change(tmp_path, registry):
    server, ns = registry
    repo = make_repo(tmp_path / "r")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(remote))
    before = take(repo, remote, server)
    before.assert_same(take(repo, remote, server))

    (repo / "a").write_text("y")
    assert [d for d in before.differences(take(repo, remote, server)) if "work tree" in d]
    (repo / "a").write_text("x")

    git(repo, "push", "-q", str(remote), "HEAD:refs/heads/other")
    assert [d for d in before.differences(take(repo, remote, server)) if "remote refs" in d]
    git(remote, "update-ref", "-d", "refs/heads/other")

    ref = f"{ns}/snap:1"
    subprocess.run(["docker", "tag", "mlops-base/python:3.11-bookworm", ref], check=True)
    try:
        subprocess.run(["docker", "push", "-q", ref], check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)
    assert [d for d in before.differences(take(repo, remote, server)) if "registry" in d]
