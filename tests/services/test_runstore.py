"""The run store: one immutable record per run under `.mlops/runs/`, in a real git repo."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mlops.core.runs import CorruptRun
from mlops.errors import MlopsError, UsageError
from mlops.services import runstore
from tests.conftest import git

FIELDS = dict(pipeline="training", env="dev", version="training-0123456789",
              images={"train": "r/train@sha256:" + "0" * 64}, parameters={"c": 0.5},
              metrics={"accuracy": 0.9}, model_uri="file:///m")


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q",
        "--allow-empty", "-m", "init")
    return tmp_path


def test_a_run_is_recorded_with_its_time_and_commit(repo):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    started = runstore.start()
    run = runstore.record(repo, started, **FIELDS)
    path = repo / ".mlops/runs" / f"{run.id}.json"
    data = json.loads(path.read_text())
    assert data["id"] == run.id == started.id and data["metrics"] == {"accuracy": 0.9}
    assert data["source_commit"] == git(repo, "rev-parse", "HEAD")
    moment = dt.datetime.fromisoformat(data["started"].replace("Z", "+00:00"))
    assert before <= moment <= dt.datetime.now(dt.UTC)
    assert 0 <= data["duration_s"] < 60
    assert runstore.read(repo, run.id) == run
    assert runstore.all_runs(repo) == [run]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_ids_are_unique_and_a_record_is_never_overwritten(repo):
    started = runstore.start()
    assert len({runstore.start().id for _ in range(50)} | {started.id}) == 51
    runstore.record(repo, started, **FIELDS)
    with pytest.raises(MlopsError, match="exists already"):
        runstore.record(repo, started, **{**FIELDS, "metrics": {"accuracy": 0.1}})
    assert runstore.read(repo, started.id).metrics == {"accuracy": 0.9}


def test_of_two_writers_racing_for_one_id_exactly_one_wins(repo):
    """A check for the file and then a rename would let both pass the check and the
    second silently replace the first; the record is linked into place instead."""
    import threading

    started = runstore.start()
    gate, outcomes = threading.Barrier(8), []

    def write(n: int) -> None:
        gate.wait()
        try:
            runstore.record(repo, started, **{**FIELDS, "metrics": {"accuracy": n / 10}})
            outcomes.append(n)
        except MlopsError:
            outcomes.append(None)

    for _ in range(20):  # rounds: the race is the OS scheduler's
        outcomes.clear()
        path = repo / ".mlops/runs" / f"{started.id}.json"
        path.unlink(missing_ok=True)
        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        [winner] = [n for n in outcomes if n is not None]
        assert runstore.read(repo, started.id).metrics == {"accuracy": winner / 10}
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_unknown_bad_and_corrupt_ids(repo):
    assert runstore.find(repo, "20250101T120000-abcdef") is None
    with pytest.raises(UsageError, match="unknown run 20250101T120000-abcdef"):
        runstore.read(repo, "20250101T120000-abcdef")
    with pytest.raises(UsageError, match="is not a run id"):
        runstore.find(repo, "../../etc/passwd")
    (repo / ".mlops/runs").mkdir(parents=True)
    (repo / ".mlops/runs/20250101T120000-abcdef.json").write_text("[]")
    with pytest.raises(CorruptRun, match="corrupt run record: not a JSON object"):
        runstore.read(repo, "20250101T120000-abcdef")
