"""The run records under `.mlops/runs/`: one immutable `<run-id>.json` per `mlops run`.

Local to a clone (`.mlops/runs/` is git-ignored, like the run outputs beside
it). `start` takes the clock and the id when a run starts, `record` writes the
record once, atomically, and never over another; `read`, `find` and `all_runs`
give them back parsed, a corrupt one as a one-line error (exit 1).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path

from mlops import safejson
from mlops.adapters import gitops
from mlops.atomicfile import write_json_atomic
from mlops.core import runs
from mlops.core.runs import CorruptRun, RunRecord
from mlops.errors import MlopsError, UsageError
from mlops.records import dataclass, field

RUNS_DIR = ".mlops/runs"
MAX_RECORD_BYTES = 1 << 20


def runs_dir(root: Path) -> Path:
    return root / RUNS_DIR


@dataclass(frozen=True)
class Started:
    """A run under way: its id, when it started (UTC) and a monotonic clock."""

    id: str
    at: dt.datetime
    _clock: float = field(default_factory=time.monotonic, repr=False)

    def elapsed(self) -> float:
        return time.monotonic() - self._clock


def start() -> Started:
    now = dt.datetime.now(dt.UTC)
    return Started(runs.make_id(now, secrets.token_hex(3)), now)


def record(root: Path, started: Started, **fields) -> RunRecord:
    """Write the run's record (`fields`: RunRecord's, less id, times and commit)."""
    return write(root, finish(root, started, **fields))


def finish(root: Path, started: Started, **fields) -> RunRecord:
    """The run's record, not yet written: the clock stops here."""
    return RunRecord(id=started.id, started=runs.utc_iso(started.at),
                     duration_s=round(started.elapsed(), 3),
                     source_commit=gitops.head_commit(root), **fields)


def write(root: Path, run: RunRecord) -> RunRecord:
    """Write `run` once; a record with its id is never overwritten."""
    path = _path(root, run.id)
    try:  # ids carry 24 random bits; a second run in the same second is new
        write_json_atomic(path, run.dump(), exclusive=True)
    except FileExistsError:
        raise MlopsError(f"{path}: a run record with this id exists already; "
                         "run again") from None
    return run


def _path(root: Path, run_id: str) -> Path:
    return runs_dir(root) / f"{runs.check_id(run_id)}.json"


def find(root: Path, run_id: str) -> RunRecord | None:
    """The record of `run_id`, None if there is none; CorruptRun if it does not parse."""
    path = _path(root, run_id)
    try:
        data = safejson.read(path, max_bytes=MAX_RECORD_BYTES)
    except safejson.NotFound:
        return None
    except safejson.JsonProblem as exc:
        raise CorruptRun(f"{path}: corrupt run record: {exc}") from None
    return _parse(path, data)


def read(root: Path, run_id: str) -> RunRecord:
    """The record of `run_id`; an unknown id is a usage error (exit 2)."""
    found = find(root, run_id)
    if found is None:
        raise UsageError(f"unknown run {run_id}: no {RUNS_DIR}/{run_id}.json "
                         "(`mlops runs list` shows the recorded runs)")
    return found


def all_runs(root: Path) -> list[RunRecord]:
    """Every record under `.mlops/runs/` (files named like a run id), unsorted."""
    folder = runs_dir(root)
    if not folder.is_dir():
        if folder.exists() or folder.is_symlink():  # as `runs compare` finds it: corrupt
            raise CorruptRun(f"{folder}: is not a directory of run records")
        return []
    # Every name like a record's, readable or not: one that cannot be read is corrupt,
    # as `runs compare` says, not left out of the list.
    ids = [p.stem for p in folder.glob("*.json") if runs.is_id(p.stem)]
    return [run for run in (find(root, i) for i in ids) if run is not None]


def _parse(path: Path, data) -> RunRecord:
    try:
        run = runs.parse(data)
    except CorruptRun as exc:
        raise CorruptRun(f"{path}: corrupt run record: {exc.message}") from None
    if run.id != path.stem:
        raise CorruptRun(f"{path}: corrupt run record: its id is {run.id}")
    return run
