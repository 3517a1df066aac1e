"""Fault injection between mlops and its git remote.

The remote is a real smart-HTTP server (`git http-backend`, with basic auth and
a token in the remote URL) behind tests/support/faultproxy.py, which refuses
connections, resets them mid-transfer, answers too slowly or answers 5xx.

- Transient faults (the first connections only): the command retries and
  succeeds, and the bare repository on disk has exactly the new commit.
- Persistent faults: exit 1, one `mlops: error:` line that names the fault and
  the attempts, no traceback, no token, and nothing changed anywhere
  (tests/support/untouched.py).
- A push whose answer is lost after it landed is not made twice, even when
  someone else pushed on top before the retry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.commands.conftest import built, play  # noqa: F401 - fixtures used by name
from tests.conftest import Result, git
from tests.support.faultproxy import FaultProxy
from tests.support.githttp import GitHttpServer, RequestInfo
from tests.support.promotion import Playground
from tests.support.services import RegistryServer
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

USER, TOKEN = "ci-bot", "tok-7c1e9b2d5a"  # planted: must never be printed
RETRIES = 3
ENV = {"MLOPS_GIT_TIMEOUT": "1", "MLOPS_GIT_RETRIES": str(RETRIES)}
# The unauthenticated first request's 401 answer is 191 bytes; a smart-HTTP
# answer's headers about 300. 360 bytes cut the ref advertisement mid-body.
MID_BODY = 360
FOREVER = 10**6
SLOW = 30.0  # seconds a slow remote holds its answer: far past MLOPS_GIT_TIMEOUT


@dataclass
class HttpRemote:
    play: Playground
    server: GitHttpServer
    proxy: FaultProxy
    registry: RegistryServer
    build: str

    def run(self, *args: str):
        return self.play.proj.run(*args, "--json", env=ENV)

    def promote(self):
        return self.run("promote", "--to", "dev", "--build", self.build)

    def snapshot(self) -> Snapshot:
        return Snapshot.take(repo=self.play.clone, remote=self.play.remote,
                             registry=self.registry)

    def when(self, condition: Callable[[RequestInfo], bool], action: Callable[[], None],
             stage: str = "on_request") -> None:
        """Run `action` the first time a request meets `condition` (server-side hook)."""
        lock, done = threading.Lock(), []

        def hook(info: RequestInfo) -> None:
            with lock:
                if not done and condition(info):
                    done.append(info)
                    action()

        setattr(self.server, stage, hook)


@pytest.fixture
def remote(play, built, registry_server, monkeypatch):  # noqa: F811 - pytest fixtures
    """`play`, with origin at http://USER:TOKEN@127.0.0.1:<proxy>/remote.git.

    mlops's temp dirs go to a directory of this test's own, so a workspace that
    another test run on this machine has open is not taken for one left behind.
    """
    tmp = play.base / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    server = GitHttpServer(play.base, auth=(USER, TOKEN)).start()
    proxy = FaultProxy(("127.0.0.1", server.port)).start()
    try:
        play.proj.git("remote", "set-url", "origin",
                      server.url("remote.git", auth=True, port=proxy.port))
        yield HttpRemote(play, server, proxy, registry_server, str(built[1]))
    finally:
        proxy.stop()
        server.stop()


def push_request(info: RequestInfo) -> bool:
    """The authorized ref advertisement that opens a push: the next connection is its POST."""
    return info.method == "GET" and info.service == "git-receive-pack" and info.status is None


# -- the faults -------------------------------------------------------------------

def refuse(r: HttpRemote, n: int) -> None:
    r.proxy.down()  # transient refusals end in run_until_retry


def reset_mid_transfer(r: HttpRemote, n: int) -> None:
    r.proxy.reset_mid_transfer_first(n, after_bytes=MID_BODY)


def answer_slowly(r: HttpRemote, n: int) -> None:
    r.proxy.delay(SLOW)
    if n != FOREVER:  # the first request's connection stays slow; later ones are quick
        r.when(lambda info: True, lambda: r.proxy.delay(0))


def answer_5xx(r: HttpRemote, n: int) -> None:
    r.proxy.http_status_first(n, 503)


# fault -> (inject, connections it spoils when transient, what git says about it).
# One request is one connection (githttp closes each); git's first request of an
# operation carries no credentials and gets 401, so "reset mid-transfer" spoils two
# connections to cut one answer (the 401 is shorter than MID_BODY and goes through).
FAULTS = {
    "refused": (refuse, 0, "Couldn't connect to server"),
    "reset mid-transfer": (reset_mid_transfer, 2, "Connection reset by peer"),
    "slow past the timeout": (answer_slowly, 1, "Operation too slow"),
    "5xx": (answer_5xx, 2, "The requested URL returned error: 503"),
}


def clean(result) -> None:
    """No traceback and no token, whatever happened."""
    assert "Traceback" not in result.out + result.err
    assert TOKEN not in result.out + result.err


def retry_notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if "; retrying (attempt " in line]


def run_until_retry(r: HttpRemote, args: list[str]) -> Result:
    """The CLI as a process, the remote refusing until mlops says it will retry."""
    cmd = [sys.executable, "-m", "mlops", *args, "--json", "--repo", str(r.play.clone)]
    err: list[str] = []
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **ENV, "MLOPS_GIT_RETRIES": "6"})

        def watch() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                err.append(line)
                if "; retrying (attempt " in line:
                    r.proxy.up()  # idempotent

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            proc.wait(timeout=120)
        finally:
            proc.kill()
            watcher.join(10)
            assert proc.stderr is not None
            proc.stderr.close()
        out.seek(0)
        return Result(proc.returncode, out.read(), "".join(err))


# -- promote: the clone meets the fault ------------------------------------------

@pytest.mark.parametrize("fault", FAULTS)
def test_transient_fault_is_retried_and_the_promotion_lands(remote, fault):
    inject, n, symptom = FAULTS[fault]
    before = remote.play.remote_head()
    inject(remote, n)
    if fault == "refused":
        result = run_until_retry(remote, ["promote", "--to", "dev", "--build", remote.build])
    else:
        result = remote.promote()
    clean(result)
    assert result.code == 0, result.err
    notes = retry_notes(result.err)
    assert notes and all(symptom in note for note in notes), result.err
    if fault != "refused":
        assert len(notes) == max(1, remote.proxy.faults_injected)
    # read straight from the bare repository on disk: one new commit, the promotion
    assert git(remote.play.remote, "rev-list", f"{before}..main").split() == [
        result.json["commit"]]
    assert remote.play.remote_log()[0] == f"promote(dev): release {result.json['release']} " \
                                          "from build"


@pytest.mark.parametrize("fault", FAULTS)
def test_persistent_fault_fails_in_one_line_and_changes_nothing(remote, fault):
    inject, _, symptom = FAULTS[fault]
    before = remote.snapshot()
    inject(remote, FOREVER)
    result = remote.promote()
    clean(result)
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith("mlops: error:")]
    assert len(errors) == 1 and result.err.rstrip().endswith(errors[0]), result.err
    assert errors[0].startswith("mlops: error: cannot clone http://***@127.0.0.1:")
    assert symptom in errors[0], errors[0]
    assert errors[0].endswith(f" (gave up after {RETRIES} attempts)"), errors[0]
    assert len(retry_notes(result.err)) == RETRIES - 1
    assert json.loads(result.out)["ok"] is False
    before.assert_same(remote.snapshot())


# -- promote: the push meets the fault --------------------------------------------

def test_push_answered_5xx_is_pushed_again(remote):
    before = remote.play.remote_head()
    remote.when(push_request, lambda: remote.proxy.http_status_first(1, 502))
    result = remote.promote()
    clean(result)
    assert result.code == 0, result.err
    [note] = retry_notes(result.err)
    assert note.startswith("mlops: git push to http://***@127.0.0.1:") and "502" in note
    assert git(remote.play.remote, "rev-list", f"{before}..main").split() == [
        result.json["commit"]]
    assert len(remote.server.pushes()) == 1  # the 502 never reached the repository


def test_push_that_landed_but_lost_its_answer_is_not_made_twice(remote):
    before = remote.play.remote_head()
    # the push's POST reaches the backend, which updates the ref; its answer is reset
    remote.when(push_request, lambda: remote.proxy.reset_mid_transfer_first(1, after_bytes=0))
    result = remote.promote()
    clean(result)
    assert result.code == 0, result.err
    [note] = retry_notes(result.err)
    assert "Connection reset by peer" in note, note
    assert result.json["status"] == "promoted"
    assert git(remote.play.remote, "rev-list", f"{before}..main").split() == [
        result.json["commit"]]
    assert len(remote.server.pushes()) == 1  # the retry found it there: nothing re-sent


def test_persistent_fault_at_the_push_leaves_the_remote_as_it_was(remote):
    before = remote.snapshot()
    remote.when(push_request, lambda: remote.proxy.http_status_first(FOREVER, 503))
    result = remote.promote()
    clean(result)
    assert result.code == 1
    assert result.err.splitlines()[-1].startswith("mlops: error: git push to http://***@")
    assert result.err.rstrip().endswith("(gave up after 3 attempts)"), result.err
    before.assert_same(remote.snapshot())
    assert remote.server.pushes() == []


# -- rollback: a lost answer, and someone else's push on top before the retry ---------

def test_rollback_whose_answer_was_lost_after_a_racer_pushed_is_not_rolled_back_twice(remote):
    first = remote.promote()
    second = remote.run("promote", "--to", "dev", "--build", remote.build,
                        "--metrics", str(remote.play.metrics("m", {"accuracy": 0.97})))
    assert first.code == 0 and second.code == 0, second.err
    before = remote.play.remote_head()

    def racer_pushes_on_top() -> None:
        bare = remote.play.remote  # the rollback has landed: someone else commits on top
        tip = git(bare, "commit-tree", "main^{tree}", "-p", "main", "-m", "racer")
        git(bare, "update-ref", "refs/heads/main", tip)

    remote.when(push_request, lambda: remote.proxy.reset_mid_transfer_first(1, after_bytes=0))
    remote.when(lambda info: info.method == "POST" and info.service == "git-receive-pack",
                racer_pushes_on_top, stage="before_response")
    result = remote.run("rollback", "--env", "dev")
    clean(result)
    assert result.code == 0, result.err
    assert len(retry_notes(result.err)) == 1
    first_id, second_id = first.json["release"], second.json["release"]
    assert (result.json["release"], result.json["previous"]) == (first_id, second_id)
    assert remote.play.remote_log()[:2] == [
        "racer", f"rollback(dev): release {first_id} (was {second_id})"]
    assert len(git(remote.play.remote, "rev-list", f"{before}..main").split()) == 2
    record = remote.play.remote_show("environments/dev/release.yaml")
    assert f"id: {first_id}" in record


# -- history: a read-only command through the same faults ----------------------------

@pytest.mark.parametrize("fault", FAULTS)
def test_history_rides_out_a_transient_fault_and_reports_a_persistent_one(remote, fault):
    inject, n, symptom = FAULTS[fault]
    assert remote.promote().code == 0
    before = remote.snapshot()
    inject(remote, FOREVER)
    failed = remote.run("history")
    clean(failed)
    last = failed.err.splitlines()[-1]
    assert failed.code == 1 and symptom in last and last.endswith(" attempts)"), failed.err
    before.assert_same(remote.snapshot())

    remote.proxy.pass_through()
    if fault == "refused":
        result = run_until_retry(remote, ["history"])  # still down, until mlops retries
    else:
        inject(remote, n)
        result = remote.run("history")
    clean(result)
    assert result.code == 0, result.err
    assert retry_notes(result.err)
    assert [e["action"] for e in result.json["entries"]] == ["promote"]


def test_a_server_repeating_the_token_in_its_refusal_is_masked(remote):
    # A pre-receive hook stands in for a git host whose refusal names the credentials
    # it was sent (its `remote:` line is the one mlops reports), here bare.
    hook = remote.play.remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho 'push refused for {USER} with token {TOKEN}' >&2\nexit 1\n")
    hook.chmod(0o755)
    result = remote.promote()
    clean(result)
    assert result.code == 1
    [error] = [line for line in result.err.splitlines() if line.startswith("mlops: error:")]
    assert error.startswith("mlops: error: git push to http://***@127.0.0.1:"), error
    assert error.endswith(": remote: push refused for *** with token ***"), error
