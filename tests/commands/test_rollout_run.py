"""`mlops rollout run` at the final step, where the move to 100% needs a release manager's
signed approval: without --wait-approval it exits 4 naming the command to run; with it, it
polls until --timeout (then exits 4), and goes on once an approval lands while it waits.

The analysis runs for real against a Prometheus (with nothing to scrape: the canary's
error rate is `... or vector(0)`, a healthy canary's zero); the approval is a real signed
commit on the real remote, made while a real `mlops rollout run` process waits for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.commands.test_rollout import (
    approve,
    canary_config,
    first_release,
    passing,
    push_edit,
    release_of,
    rollout,
    to_staging,
)
from tests.support.promotion import Playground, repo_files, ssh_key
from tests.support.services import PrometheusServer

pytestmark = pytest.mark.usefixtures("docker_engine")

QUERY = 'sum(rate(errors{revision="{{ revision }}"}[{{ interval }}]))'
REVISIONS = ("--revision", "cancer-predictor-00002", "--baseline-revision",
             "cancer-predictor-00001")
WAITING = "waiting for a release manager's approval"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("run-prom")).start()
    yield server
    server.stop()


@pytest.fixture
def final_step(project, built, tmp_path, prometheus, monkeypatch):
    """prod runs v1; its canary of v2 is at 50%, the last step of [10, 50], unapproved."""
    keys = {"alice": ssh_key(tmp_path, "alice")}
    files = {**repo_files(built[0]), "mlops.yaml": canary_config(built[0]),
             ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n"}
    play = Playground(tmp_path, project(files))
    to_staging(play, built, "pvc://models/cancer-v1")
    first_release(play, keys)
    to_staging(play, built, "pvc://models/cancer-v2")
    push_edit(play, "mlops.yaml", lambda t: t.replace(QUERY, QUERY + " or vector(0)"))
    assert rollout(play, "start").code == 0
    assert rollout(play, "promote", "--analysis", passing(play)).code == 0
    record = release_of(play, "prod")
    assert (record["rollout"]["percent"], record["rollout"]["state"]) == (50, "canary")
    monkeypatch.setenv("MLOPS_PROMETHEUS_URL", prometheus.url)
    return play, keys


def approve_command(play) -> str:
    from mlops import release as rel

    record = rel.parse(play.remote_show("environments/prod/release.yaml"), "prod").release
    return f"`mlops approve --env prod --release {record.id} --digest {record.digest}`"


def kept_analysis(play) -> dict:
    """The decision record `rollout run` keeps for the promote commit (README)."""
    return json.loads((play.clone / ".git/mlops/rollout/prod.json").read_text())


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("mlops: error:")]


def test_without_wait_approval_it_exits_4_naming_the_approve_command(final_step):
    play, _ = final_step
    head = play.remote_head()
    started = time.monotonic()
    result = rollout(play, "run", *REVISIONS, "--timeout", "30s")  # would it wait, not long
    assert result.code == 4, result.err
    assert time.monotonic() - started < 30
    assert kept_analysis(play)["result"] == "pass"  # refused for the approval alone
    [error] = errors(result.err)
    assert approve_command(play) in error and "none found" in error, error
    assert WAITING not in result.err  # it did not wait
    assert play.remote_head() == head
    assert release_of(play, "prod")["rollout"]["percent"] == 50


def test_wait_approval_polls_until_the_timeout_then_exits_4(final_step):
    """A --timeout shorter than the poll interval still waits it out and looks once more."""
    play, _ = final_step
    head = play.remote_head()
    started = time.monotonic()
    result = rollout(play, "run", *REVISIONS, "--wait-approval", "--timeout", "3s")
    # (the default 15 s poll: a --timeout shorter than it still waits it out)
    elapsed = time.monotonic() - started
    assert result.code == 4, result.err
    assert result.err.count(WAITING) >= 1, result.err
    [error] = errors(result.err)
    assert approve_command(play) in error, error
    assert 3.0 <= elapsed < 60, elapsed
    assert play.remote_head() == head
    assert release_of(play, "prod")["rollout"]["percent"] == 50


def test_a_wait_shorter_than_the_analyses_it_needs_ends_in_exit_4_not_in_an_abort(final_step):
    """Analysing again while the approval is awaited is bounded by --timeout: with a 2 s
    --max-age and a 6 s wait the run analyses a few times, then exits 4 as a plain wait
    would, leaving the canary where it was (no abort, no hold)."""
    play, _ = final_step
    head = play.remote_head()
    started = time.monotonic()
    result = rollout(play, "run", *REVISIONS, "--wait-approval", "--timeout", "6s",
                     "--max-age", "2s")
    assert result.code == 4, result.err
    assert time.monotonic() - started < 60
    assert "analysing the canary again" in result.err, result.err
    [error] = errors(result.err)
    assert approve_command(play) in error, error
    assert play.remote_head() == head
    record = release_of(play, "prod")
    assert record["rollout"]["percent"] == 50 and record["rollout"]["state"] == "canary"
    assert record.get("hold") is None


def _approved_while_running(play, keys, seen: str, *args: str) -> tuple[dict, str, float]:
    """Run a real `mlops rollout run --wait-approval` process; once a line of its stderr
    contains `seen`, check nothing moved and approve as alice. (Its --json document, the
    remote head it was approved on, the seconds it ran on after the approval landed.)
    Fails if the run exits non-zero."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "rollout", "run", "--env", "prod", *REVISIONS,
         "--wait-approval", *args, "--json", "--repo", str(play.clone)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    lines: list[str] = []
    saw = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if seen in line:
                saw.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not saw.wait(0.2) and reader.is_alive() and time.monotonic() < deadline:
            pass  # until it says so (or ends without saying it)
        assert saw.is_set(), "".join(lines)
        head = play.remote_head()
        assert release_of(play, "prod")["rollout"]["percent"] == 50  # nothing moved yet
        approve(play, keys)
        approved = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        after = time.monotonic() - approved
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert proc.returncode == 0, "".join(lines)
    return json.loads(out), head, after


def test_an_analysis_that_grows_old_while_the_approval_is_awaited_is_made_again(final_step):
    """Promoting on an analysis older than --max-age is refused (exit 3), so a wait longer
    than that (the scaffold's prod job waits 2h, the default --max-age is 1h) analyses the
    canary again instead of failing once the first analysis is an hour old."""
    play, keys = final_step
    doc, _, _ = _approved_while_running(play, keys, "analysing the canary again",
                                        "--timeout", "2m", "--max-age", "4s")  # not exit 3
    assert doc["state"] == "complete", doc
    analyses = [step for step in doc["steps"] if step["percent"] == 50]
    assert len(analyses) >= 2 and all(a["analysis"] == "pass" for a in analyses), doc
    assert analyses[-1]["promoted_to"] == 100 and "promoted_to" not in analyses[0], doc
    assert release_of(play, "prod")["approval"]["approver"] == "alice@example.com"


def test_wait_approval_goes_on_once_an_approval_lands(final_step, tmp_path):
    """The run is a real process; the release manager approves once it says it waits."""
    play, keys = final_step
    doc, head, after = _approved_while_running(play, keys, WAITING, "--timeout", "5m",
                                               "--approval-poll", "1s")
    assert after < 10, after  # a look every second, not every 15 (the default)
    assert doc["state"] == "complete" and doc["steps"][-1]["promoted_to"] == 100, doc
    record = release_of(play, "prod")
    assert record["rollout"]["state"] == "complete"
    assert record["approval"]["approver"] == "alice@example.com"
    log = play.remote_log()
    assert log[0].startswith("canary(prod):") and log[1].startswith("approve(prod)"), log
    assert play.remote_head() != head
