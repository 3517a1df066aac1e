#!/usr/bin/env python3
"""`mlops history` over 500 promotion commits, against `git log` of the same commits.

Target (DESIGN.md, "Performance targets"): history over 500 promotion commits
within 3x of `git log` (issue 17: `git log --format=%B -n 500`).

Set-up, not measured: a bare remote whose main holds one commit with
mlops.yaml (dev, staging, prod) and then N promotion commits, dev, staging
and prod in turn, each with the message `mlops promote` writes for a release of
four images with one gate (mlops.trailers.promotion_message), made by one
`git fast-import`; and a clone that has fetched them (so `git log origin/main`
reads the same commits). The first `mlops history` run, untimed, fetches the
branch into the clone's private ref; later runs fetch nothing new, as when
nobody promoted since.

Measured in turns (one run of each, round after round, after one warm-up of
each), medians with the range:
  peer          git log --format=%B -n N origin/main (fresh process)
  CLI           python3 -m mlops history --json --limit N, and --env prod
                (fresh processes: every entry, as much as the peer prints)
  in-process    mlops.cli.main([...]) after one import: the work without
                interpreter start-up and imports
  context       python3 -c pass; `git fetch` of the branch with nothing new;
                the default `mlops history` (the newest 50)

Usage: python3 benchmarks/history.py [--commits N] [--repeat N] [--no-readme]
It rewrites its own section of benchmarks/README.md and exits 0 whether or not
the target is met; 1 means it could not measure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common
from common import BenchError, Timing, run

SECTION = "history"
TARGET = 3.0
ENV = "prod"
ENVS = ("dev", "staging", "prod")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commits", type=common.at_least(3), default=500, metavar="N",
                   help="promotion commits on the branch (default 500)")
    p.add_argument("--repeat", type=common.at_least(1), default=15, metavar="N",
                   help="timed runs per measurement, after one warm-up (default 15)")
    p.add_argument("--no-readme", action="store_true",
                   help="print only; leave benchmarks/README.md alone")
    return p.parse_args(argv)


# -- set-up -------------------------------------------------------------------


def messages(count: int) -> list[bytes]:
    """What `mlops promote` writes for `count` promotions: dev, staging, prod in turn."""
    from mlops import release as rel
    from mlops import trailers

    out = []
    for i in range(count):
        env = ENVS[i % 3]
        images = {f"c{j}": rel.Image(f"127.0.0.1:5000/bench/c{j}", f"sha256:{i * 4 + j:064x}")
                  for j in range(4)}
        release = rel.Release(source_commit=f"{i:040x}", images=images,
                              metrics={"accuracy": 0.9})
        source = "build" if env == "dev" else ENVS[i % 3 - 1]
        gates = [{"gate": "accuracy", "result": "pass", "detail": "0.9 >= 0.8"}]
        out.append(trailers.promotion_message("promote", env, release, source, gates,
                                              approver="alice" if env == "prod" else None)
                   .encode())
    return out


def setup(tmp: Path, count: int) -> tuple[Path, Path]:
    """(bare remote, clone): mlops.yaml, then `count` promotion commits, fetched."""
    remote, clone = tmp / "remote.git", tmp / "clone"
    run(["git", "init", "-q", "--bare", "-b", "main", str(remote)])
    clone.mkdir()
    (clone / "mlops.yaml").write_text("registry: 127.0.0.1:5000/bench\nenvironments:\n"
                                      + "".join(f"  - name: {e}\n" for e in ENVS))
    git = ["git", *common.GIT_ID]
    run([*git, "init", "-q", "-b", "main"], cwd=clone)
    run([*git, "add", "-A"], cwd=clone)
    run([*git, "commit", "-q", "-m", "mlops.yaml"], cwd=clone)
    run([*git, "remote", "add", "origin", str(remote)], cwd=clone)
    run([*git, "push", "-q", "origin", "main"], cwd=clone)
    parent = run(["git", "rev-parse", "main"], cwd=clone).strip()
    stream = [b"commit refs/heads/main\ncommitter bench <b@127.0.0.1> %d +0000\ndata %d\n%s\n"
              % (1_700_000_000 + i, len(m), m) + (f"from {parent}\n".encode() if i == 0 else b"")
              for i, m in enumerate(messages(count))]
    proc = subprocess.run(["git", "fast-import", "--quiet"], cwd=remote, input=b"".join(stream),
                          capture_output=True)
    if proc.returncode != 0:
        raise BenchError(f"git fast-import failed: {proc.stderr.decode(errors='replace')[-300:]}")
    run(["git", "fetch", "-q", "origin"], cwd=clone)
    return remote, clone


# -- measuring ----------------------------------------------------------------


def _quiet_main(argv: list[str]) -> None:
    import mlops.cli

    with open(os.devnull, "w") as devnull:
        with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            code = mlops.cli.main(argv)
    if code != 0:
        raise BenchError(f"mlops.cli.main({argv}) returned {code}")


def check_output(clone: Path, count: int) -> None:
    """Every commit is an entry, and --env keeps exactly that environment's."""
    import json

    out = run([sys.executable, "-m", "mlops", "history", "--json", "--limit", str(count)],
              cwd=clone)
    entries = json.loads(out)["entries"]
    if len(entries) != count or entries[0]["env"] != ENVS[(count - 1) % 3]:
        raise BenchError(f"mlops history listed {len(entries)} entries, not {count}")


def measure(clone: Path, remote: Path, count: int, repeat: int) -> dict[str, Timing]:
    n = str(count)
    history = [sys.executable, "-m", "mlops", "history", "--json"]
    fetch = ["git", "fetch", "-q", "--no-tags", "--no-write-fetch-head", str(remote),
             "+refs/heads/main:refs/bench/fetched"]

    def cli(*args: str) -> Callable[[], object]:
        return lambda: run([*history, *args], cwd=clone, capture=False)

    import mlops.cli  # noqa: F401  imported once, before the in-process runs

    specs = [
        ("peer", f"git log --format=%B -n {n} origin/main",
         lambda: run(["git", "log", "--format=%B", "-n", n, "origin/main"], cwd=clone,
                     capture=False), "fresh process"),
        ("cli", f"mlops history --json --limit {n} (fresh process)", cli("--limit", n), ""),
        ("cli_env", f"mlops history --json --env {ENV} --limit {n} (fresh process)",
         cli("--env", ENV, "--limit", n), f"{count // 3} of the {n} are {ENV}'s"),
        ("inproc", f"mlops.cli.main([history, --json, --limit, {n}]) (in-process)",
         lambda: _quiet_main(["history", "--json", "--limit", n, "--repo", str(clone)]),
         "after import and one warm-up"),
        ("inproc_env", f"mlops.cli.main([history, --json, --env, {ENV}, ...]) (in-process)",
         lambda: _quiet_main(["history", "--json", "--env", ENV, "--limit", n, "--repo",
                              str(clone)]), ""),
        ("bare", "python3 -c pass", lambda: run([sys.executable, "-c", "pass"], cwd=clone,
                                                capture=False), "interpreter start-up"),
        ("fetch", "git fetch of the branch, nothing new", lambda: run(fetch, cwd=clone),
         "what history does before it reads"),
        ("cli_default", "mlops history --json (fresh process)", cli(),
         "the default --limit 50"),
    ]
    timings = common.measure_turns([(title, fn, note) for _, title, fn, note in specs],
                                   repeat)
    return {key: t for (key, *_), t in zip(specs, timings, strict=True)}


# -- report -------------------------------------------------------------------


def ratio_rows(t: dict[str, Timing]) -> list[list[str]]:
    peer = t["peer"].median
    rows = []
    for key, what, target in (
            ("cli", "history / git log (fresh processes)", "DESIGN.md"),
            ("cli_env", f"history --env {ENV} / git log (fresh processes)", "DESIGN.md"),
            ("inproc", "history / git log (in-process)", "the work without start-up"),
            ("inproc_env", f"history --env {ENV} / git log (in-process)",
             "the work without start-up")):
        ratio = t[key].median / peer
        rows.append(common.target_row(what, ratio, f"≤ {TARGET:g}× ({target})", ratio <= TARGET))
    rows.append(common.target_row("python3 -c pass / git log", t["bare"].median / peer, "—",
                                  False))
    rows.append(common.target_row("git fetch, nothing new / git log", t["fetch"].median / peer,
                                  "—", False))
    return rows


def section(script: str, t: dict[str, Timing], args: argparse.Namespace, revision: str,
            busy: float | None, setup_seconds: float) -> str:
    m = common.machine()
    order = ["peer", "cli", "cli_env", "inproc", "inproc_env", "bare", "fetch", "cli_default"]
    timing_table = common.md_table(common.TIMING_HEADERS, common.timing_rows(t[k] for k in order))
    busy_text = f"{busy:.0%}" if busy is not None else "unknown"
    git_version = common.tool_version(["git", "--version"]).removeprefix("git version ")
    return f"""### History (`mlops history`, {args.commits} promotion commits)

Target (DESIGN.md, "Performance targets"): history over {args.commits} promotion
commits within {TARGET:g}× of `git log --format=%B -n {args.commits}` (issue 17).

- Date: {m['date']}
- Code: `mlops/` as of commit {common.revision_since(revision)}
- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']},
  git {git_version}; CPUs {busy_text} busy with other work just before measuring
- Reproduce: `{common.command_line(script)}` (or `make bench`)
- Method: median of {args.repeat} runs after one warm-up, every measurement in
  turns (one run of each per round). A bare remote with {args.commits} promotion
  commits (dev, staging, prod in turn; four images and one gate each, the
  message `mlops promote` writes), made with `git fast-import` in
  {setup_seconds:.1f} s (not measured), and a clone that fetched them. The
  warm-up run fetches the branch into the clone's `refs/mlops/remote/main`; the
  timed runs fetch nothing new. `--limit {args.commits}` lists every commit, as
  much as `git log` prints. Fresh processes are `{Path(sys.executable).name} -m mlops`.

{timing_table}

{common.md_table(common.TARGET_HEADERS, ratio_rows(t))}
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    revision = common.project_revision()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-history-"))
    try:
        start = time.perf_counter()
        remote, clone = setup(tmp, args.commits)
        setup_seconds = time.perf_counter() - start
        check_output(clone, args.commits)
        busy = common.cpu_busy()
        print(f"measuring: {args.repeat} rounds in turns after one warm-up", flush=True)
        timings = measure(clone, remote, args.commits, args.repeat)
        rows = ratio_rows(timings)
        print(common.text_table(common.TIMING_HEADERS, common.timing_rows(timings.values())))
        print()
        print(common.text_table(common.TARGET_HEADERS, rows))
        if not args.no_readme:
            common.write_section(SECTION, section(__file__, timings, args, revision, busy,
                                                  setup_seconds))
            print(f"\nwrote the {SECTION} section of {common.README}")
    except BenchError as exc:
        print(f"history: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
