"""The promotion benchmark's ten racers: ten `mlops promote` processes on one remote.

Each racer has its own build record and metrics (a distinct release); all must
exit 0 and the remote must gain exactly ten commits of ten different releases.
Used by benchmarks/promote.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _promote_fixture import ENV, VARIANTS, Setup, build_record, make_repo, record_digests
from common import BenchError, Timing, fmt_seconds, run

RACERS = 10
RACE_TIMEOUT = 600
BACKOFF_INITIAL, BACKOFF_MAX = 0.1, 2.0  # in_workspace's retry policy, for the report


@dataclass
class Round:
    seconds: float
    codes: list[int]
    landed: int
    releases: int
    retries: int
    most_losses: int  # rejected pushes of the racer that lost most often


def backoff_ceiling(losses: int) -> float:
    """The most a racer can sleep after `losses` rejected pushes.

    mlops retries with full jitter (mlops/adapters/retry.py): each wait is uniform between
    0 and min(0.1 s * 2**k, 2 s), so only the ceiling is fixed.
    """
    return sum(min(BACKOFF_INITIAL * 2**k, BACKOFF_MAX) for k in range(losses))


def race_round(base: Path, remote: Path, clone: Path, records: list[Path], round_no: int,
               offset: int) -> Round:
    metrics = []
    for i in range(RACERS):
        path = base / f"metrics-{round_no}-{i}.json"
        # accuracy 0.90 + i/1000, shifted each round so that no racer repeats a release
        path.write_text(json.dumps({"accuracy": 0.9 + (offset + i) / 1000, "f1": 0.94}))
        metrics.append(path)
    before = run(["git", "rev-parse", "refs/heads/main"], cwd=remote).strip()
    argvs = [[sys.executable, "-m", "mlops", "promote", "--to", ENV, "--build", str(records[i]),
              "--metrics", str(metrics[i]), "--repo", str(clone)] for i in range(RACERS)]
    logs = [base / f"racer-{round_no}-{i}.log" for i in range(RACERS)]
    handles = [open(log, "wb") for log in logs]  # closed below
    procs: list[subprocess.Popen] = []
    start = time.perf_counter()
    try:
        for argv, handle in zip(argvs, handles, strict=True):
            procs.append(subprocess.Popen(argv, cwd=clone, stdout=subprocess.DEVNULL,
                                          stderr=handle))
        codes = [p.wait(timeout=RACE_TIMEOUT) for p in procs]
    except subprocess.TimeoutExpired:
        raise BenchError(f"a racer took over {RACE_TIMEOUT}s") from None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for handle in handles:
            handle.close()
    seconds = time.perf_counter() - start
    errors = [log.read_text(errors="replace") for log in logs]
    commits = run(["git", "rev-list", f"{before}..refs/heads/main"], cwd=remote).split()
    messages = run(["git", "log", "--format=%(trailers:key=Mlops-Release,valueonly)",
                    f"{before}..refs/heads/main"], cwd=remote)
    releases = {line.strip() for line in messages.splitlines() if line.strip()}
    losses = [e.count("the remote moved on") for e in errors]
    if any(codes):
        first = next(e for c, e in zip(codes, errors, strict=True) if c)
        print(f"warning: racers exited {codes}; first error: {first.strip()[-300:]}", flush=True)
    return Round(seconds, codes, len(commits), len(releases), sum(losses), max(losses))


def measure_race(s: Setup, count: int, rounds: int) -> tuple[list[Round], Timing]:
    """Ten racers, one warm-up round then `rounds` timed rounds, on a repo of `count`."""
    names = s.names[:count]
    remote, clone = make_repo(s.tmp, "race", count, s.image_ns)
    head = run(["git", "rev-parse", "HEAD"], cwd=clone).strip()
    digests = {v: {n: d for n, d in record_digests(s.records[v]).items() if n in names}
               for v in VARIANTS}
    records = [build_record(s.tmp / f"race-build-{i}.json", head, s.image_ns, names,
                            digests[VARIANTS[i % 2]], VARIANTS[i % 2]) for i in range(RACERS)]
    print(f"racing: {RACERS} promoters at once on a {count}-component repository, "
          f"{rounds} rounds after one warm-up round", flush=True)
    results = []
    for round_no in range(rounds + 1):
        r = race_round(s.tmp, remote, clone, records, round_no, offset=round_no * RACERS)
        what = "warm-up" if round_no == 0 else f"round {round_no}"
        print(f"  {what}: {fmt_seconds(r.seconds)}, exit codes {sorted(set(r.codes))}, "
              f"{r.landed} commits, {r.releases} distinct releases, "
              f"{r.retries} recomputations after a rejected push (at most {r.most_losses} "
              "for one racer)", flush=True)
        results.append(r)
    timed = results[1:]
    timing = Timing(f"{RACERS} racers, all landed (wall time of the round)",
                    [r.seconds for r in timed],
                    note=f"{count} components; fresh processes started together")
    return timed, timing


def race_rows(rounds: list[Round], timing: Timing, count: int) -> list[list[str]]:
    landed = all(r.codes == [0] * RACERS and r.landed == RACERS and r.releases == RACERS
                 for r in rounds)
    return [[
        f"{RACERS} racers on one remote ({count} components)",
        "; ".join(f"{r.landed}/{RACERS} landed" for r in rounds),
        "all ten land (DESIGN.md)",
        "met" if landed else "NOT met",
    ], [
        "total wall time of a round (median)",
        f"{fmt_seconds(timing.median)} (min {fmt_seconds(timing.min)}, "
        f"max {fmt_seconds(timing.max)})",
        "reported",
        "info",
    ], [
        "recomputations after a rejected push, per round",
        ", ".join(str(r.retries) for r in rounds),
        "—",
        "info",
    ], [
        "most rejected pushes of one racer, per round",
        ", ".join(str(r.most_losses) for r in rounds),
        "—",
        "info",
    ], [
        "its backoff sleep, at most (full jitter)",
        ", ".join(fmt_seconds(backoff_ceiling(r.most_losses)) for r in rounds),
        "—",
        "info",
    ]]
