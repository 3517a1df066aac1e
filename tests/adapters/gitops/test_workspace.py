import os
import tempfile
import time
from pathlib import Path

from mlops.adapters.gitops import workspace


def test_workspaces_left_by_a_killed_promotion_are_swept_after_an_hour():
    old = Path(tempfile.mkdtemp(prefix=workspace.TMP_PREFIX))
    fresh = Path(tempfile.mkdtemp(prefix=workspace.TMP_PREFIX))
    hours_ago = time.time() - 2 * workspace.STALE_AFTER
    os.utime(old, (hours_ago, hours_ago))
    try:
        workspace._sweep_stale_workspaces()
        assert not old.exists()
        assert fresh.exists()  # may belong to a promotion running right now
    finally:
        fresh.rmdir()


def test_commit_trailers_are_parsed():
    entry = "abc123\x1f1700000000\x1fpromote(dev): x\x1fMlops-Release: r-1\x1dMlops-Digest: a=sha256:1\x1dMlops-Digest: b=sha256:2"
    commit = workspace._parse_commit(entry)
    assert commit.sha == "abc123" and commit.time == 1700000000
    assert commit.trailer("mlops-release") == "r-1"
    assert commit.trailer_all("Mlops-Digest") == ["a=sha256:1", "b=sha256:2"]
