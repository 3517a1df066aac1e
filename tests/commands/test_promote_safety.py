"""Racing promoters and promoters killed mid-flight: nothing lost, nothing half-written."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.commands.conftest import GOOD, promote
from tests.conftest import git

pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.slow]


def promote_cmd(play, built, metrics_path):
    return [sys.executable, "-m", "mlops", "promote", "--repo", str(play.clone), "--to", "dev",
            "--build", str(built[1]), "--metrics", str(metrics_path)]


def consistent(play, rev: str) -> str | None:
    """The release id at `rev` if its overlay is whole and agrees with its commit, else fail."""
    try:
        text = git(play.remote, "show", f"{rev}:environments/dev/release.yaml")
    except AssertionError:
        return None  # no promotion yet at this commit
    record = yaml.safe_load(text)
    message = git(play.remote, "log", "-1", "--format=%B", rev)
    assert f"Mlops-Release: {record['id']}" in message, rev
    kust = yaml.safe_load(git(play.remote, "show", f"{rev}:environments/dev/kustomization.yaml"))
    pins = {i["name"]: i["digest"] for i in kust["images"]}
    assert pins == {n: i["digest"] for n, i in record["images"].items()}, rev
    assert "pipelines/training.yaml" in kust["resources"], rev
    git(play.remote, "cat-file", "-e", f"{rev}:environments/dev/pipelines/training.yaml")
    return record["id"]


def renders(play, rev: str) -> None:
    work = play.base / f"wt-{rev[:10]}"
    git(play.remote, "worktree", "add", "-q", "--detach", str(work), rev)
    try:
        proc = subprocess.run(["kubectl", "kustomize", str(work / "environments/dev")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, (rev, proc.stderr)
    finally:
        git(play.remote, "worktree", "remove", "--force", str(work))


def test_ten_racing_promoters_all_land(play, built):
    metrics = [play.metrics(f"race{i}", {**GOOD, "accuracy": 0.9 + i / 1000}) for i in range(10)]
    before = play.remote_head()
    start = time.monotonic()
    procs = [subprocess.Popen(promote_cmd(play, built, m), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for m in metrics]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    elapsed = time.monotonic() - start
    assert [code for code, _ in results] == [0] * 10, [err for _, err in results if err]
    commits = git(play.remote, "rev-list", f"{before}..main").split()
    assert len(commits) == 10
    landed = {consistent(play, c) for c in commits}
    assert len(landed) == 10  # ten different releases, none lost
    for commit in commits:
        renders(play, commit)
    print(f"ten racers landed in {elapsed:.1f}s")


def test_kill_9_at_random_moments_never_leaves_a_partial_state(play, built):
    rng = random.Random(20261123)
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0

    def timed_promotion(name: str, accuracy: float) -> float:
        start = time.monotonic()
        done = subprocess.run(promote_cmd(play, built, play.metrics(name, {**GOOD,
                                                                          "accuracy": accuracy})),
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return time.monotonic() - start

    # Calibrate: kill anywhere in 1.5x the longest uncontended promotion seen, so some
    # kills come before the push and some after, whatever this machine's speed. If 30
    # trials did not see both outcomes (the machine slowed down after calibrating),
    # time another promotion now and keep going, up to 30 more trials.
    longest = timed_promotion("cal", GOOD["accuracy"])
    landed = []
    trials = 0
    while trials < 30 or (not 0 < len(landed) < trials and trials < 60):
        if trials >= 30 and not landed:
            longest = max(longest, timed_promotion(f"cal{trials}", 0.85 + trials / 1000))
        trial, trials = trials, trials + 1
        before = play.remote_head()
        metrics = play.metrics(f"k{trial}", {**GOOD, "accuracy": 0.8 + trial / 1000})
        proc = subprocess.Popen(promote_cmd(play, built, metrics), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.0, 1.5 * longest))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        after = play.remote_head()
        if after != before:
            assert git(play.remote, "rev-parse", f"{after}^") == before  # one whole commit
            landed.append(trial)
        consistent(play, after)
        assert play.proj.status() == "", f"trial {trial} dirtied the user's clone"
    final = play.metrics("final", {**GOOD, "accuracy": 0.999})
    result = promote(play, "--to", "dev", "--build", str(built[1]), "--metrics", str(final),
                     "--json")
    assert result.code == 0, result.err
    assert consistent(play, play.remote_head()) == result.json["release"]
    # Both outcomes must have happened for the trials to mean anything.
    assert 0 < len(landed) < trials, f"{len(landed)} of {trials} kills landed a promotion"


def test_stale_workspaces_are_not_the_users_problem(play, built):
    before = json.dumps(sorted(os.listdir(play.clone)))
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    assert json.dumps(sorted(os.listdir(play.clone))) == before
