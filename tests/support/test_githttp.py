"""The loopback smart-HTTP git server: real clones and pushes through `git http-backend`."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from .githttp import GitHttpServer

USER, TOKEN = "ci-bot", "tok-3f9a1c"


def git(cwd: Path, *args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x", **extra}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc


@pytest.fixture
def served(tmp_path):
    """A bare repo with one commit, served with basic auth."""
    root = tmp_path / "srv"
    root.mkdir()
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(root / "remote.git"))
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "-b", "main", str(seed))
    (seed / "a.txt").write_text("a\n")
    git(seed, "add", "a.txt")
    git(seed, "commit", "-qm", "first")
    git(seed, "push", "-q", str(root / "remote.git"), "main")
    before = {t.name for t in threading.enumerate()}
    with GitHttpServer(root, auth=(USER, TOKEN)) as server:
        yield server, root / "remote.git"
    assert {t.name for t in threading.enumerate()} - before == set()  # stop() joined


def remote_head(bare: Path) -> str:
    return git(bare, "rev-parse", "refs/heads/main").stdout.strip()


def test_clone_and_push_through_http_backend(served, tmp_path):
    server, bare = served
    url = server.url("remote.git", auth=True)
    assert url == f"http://{USER}:{TOKEN}@127.0.0.1:{server.port}/remote.git"
    git(tmp_path, "clone", "-q", url, "work")
    work = tmp_path / "work"
    assert (work / "a.txt").read_text() == "a\n"
    (work / "b.txt").write_text("b\n")
    git(work, "add", "b.txt")
    git(work, "commit", "-qm", "second")
    git(work, "push", "-q", "origin", "main")
    assert remote_head(bare) == git(work, "rev-parse", "HEAD").stdout.strip()
    assert [p.user for p in server.pushes()] == [USER]  # REMOTE_USER reached the backend
    assert {r.service for r in server.requests} == {"git-upload-pack", "git-receive-pack"}


def test_wrong_or_missing_credentials_are_refused(served, tmp_path):
    server, bare = served
    head = remote_head(bare)
    for url in (server.url("remote.git"),
                f"http://{USER}:wrong@127.0.0.1:{server.port}/remote.git"):
        proc = git(tmp_path, "clone", "-q", url, "nope", check=False)
        assert proc.returncode != 0
        assert ("Authentication failed" in proc.stderr
                or "terminal prompts disabled" in proc.stderr), proc.stderr
        assert not (tmp_path / "nope").exists()
    assert {r.status for r in server.requests} == {401}
    # and a push with a wrong token changes nothing
    git(tmp_path, "clone", "-q", server.url("remote.git", auth=True), "work")
    work = tmp_path / "work"
    git(work, "commit", "-q", "--allow-empty", "-m", "sneaky")
    bad = f"http://{USER}:wrong@127.0.0.1:{server.port}/remote.git"
    assert git(work, "push", "-q", bad, "main", check=False).returncode != 0
    assert remote_head(bare) == head and server.pushes() == []


def test_big_pushes_are_chunked_and_big_fetch_requests_gzipped(served, tmp_path):
    """Both request encodings git uses for big bodies reach the backend intact."""
    server, bare = served
    url = server.url("remote.git", auth=True)
    git(tmp_path, "clone", "-q", url, "work")
    work = tmp_path / "work"
    (work / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # > http.postBuffer: chunked
    git(work, "add", "big.bin")
    git(work, "commit", "-qm", "big")
    git(work, "push", "-q", "origin", "main")
    assert remote_head(bare) == git(work, "rev-parse", "HEAD").stdout.strip()
    assert any(p.extra["chunked"] for p in server.pushes())
    # A fetch from a clone with many commits the server lacks sends > 1 KiB of "have"
    # lines, which git gzips. They are dated later than the pushed commit, so git's
    # negotiation offers them first instead of finding the common one at once.
    for i in range(40):
        git(work, "commit", "-q", "--allow-empty", "-m", f"local {i}",
            GIT_COMMITTER_DATE=f"{2_000_000_000 + i} +0000")
    tip = git(bare, "commit-tree", "main^{tree}", "-p", "main", "-m", "server side").stdout
    git(bare, "update-ref", "refs/heads/main", tip.strip())
    git(work, "fetch", "-q", "origin")
    assert git(work, "rev-parse", "origin/main").stdout.strip() == remote_head(bare)
    assert any(r.extra["content_encoding"] == "gzip" for r in server.requests)


def test_hooks_see_each_request_before_and_after_the_backend(served, tmp_path):
    server, bare = served
    seen: list[tuple[str, str | None, str | None, int | None]] = []
    server.on_request = lambda i: seen.append(("before", i.service, i.user, i.status))
    server.before_response = lambda i: seen.append(("after", i.service, i.user, i.status))
    git(tmp_path, "clone", "-q", server.url("remote.git", auth=True), "work")
    # git asks without credentials first; the refused request never reaches the backend
    assert seen[:3] == [("before", "git-upload-pack", None, 401),
                        ("before", "git-upload-pack", USER, None),
                        ("after", "git-upload-pack", USER, 200)]
