#!/usr/bin/env python3
"""The build plan against Turborepo's (DESIGN.md, "Performance targets").

Targets: `mlops build --dry-run` is no slower than `turbo run build --dry=json`
on an equivalent 200-package workspace, with nothing changed and with one
component changed, and 2x faster at 1,000 with nothing changed.

Set-up, not measured: turbo (a pinned release, installed with npm into the temp
dir); for each size a generated mlops repository (_build_plan_fixture.make_repo)
whose images are in a registry on 127.0.0.1 and in the dry run's local cache,
and a Turborepo workspace of the same files, one package per component, whose
build ran once so that turbo's cache holds every task (_turbo_fixture.py).

Measured: each pair (mlops, turbo) in turns, median of N rounds after one
warm-up round, both as fresh processes; mlops' unchanged dry runs answer from the
memo the dry run before them wrote, and are measured again with it removed before
each run (a plan). With the 200-component pair also run
`python3 -c pass` and `python3 -c "import mlops.cli, mlops.commands.build"`,
which split mlops' time into interpreter start-up, imports and the plan; with
the 1,000-component pair a bare interpreter that runs the plan's git processes
and nothing else, the floor of any Python CLI that asks git. Then
one component is changed (a committed one-line edit in both repositories): its
image is not in the registry, so mlops asks the registry for it.

Usage: python3 benchmarks/build_plan_turbo.py [--repeat N] [--small N] [--large N] [--no-readme]
It rewrites its own section of benchmarks/README.md and exits 0 whether or not
the targets are met; 1 means it could not measure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _turbo_fixture as tf
import common
from _build_plan_fixture import make_repo
from common import BenchError, LocalRegistry, Timing, run

from mlops.services.planmemo import MEMO as PLAN_MEMO  # under .git/

SECTION = "build_plan_turbo"
NAMESPACE = "bench"
SAME_TARGET = 1.0  # at the small size: no slower than turbo
FAST_TARGET = 0.5  # at the large size: 2x faster
BUSY = 0.25  # CPU use by others above which the figures are flagged as noisy


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=common.at_least(1), default=9, metavar="N",
                   help="timed rounds per pair, after one warm-up round (default 9)")
    p.add_argument("--small", type=common.at_least(1), default=200, metavar="N",
                   help="components of the small pair (default 200)")
    p.add_argument("--large", type=common.at_least(1), default=1000, metavar="N",
                   help="components of the large pair (default 1000)")
    p.add_argument("--no-readme", action="store_true",
                   help="print only; leave benchmarks/README.md alone")
    return p.parse_args(argv)


# -- set-up -------------------------------------------------------------------


@dataclass
class Pair:
    count: int
    repo: Path  # mlops
    ws: Path  # turbo


def preflight() -> list[str]:
    problems = [f"{tool} is not installed" for tool in ("git", "npm", "docker-registry")
                if not shutil.which(tool)]
    try:
        import mlops.cli  # noqa: F401
    except ImportError as exc:
        problems.append(f"cannot import mlops ({exc}); pip install -e .")
    return problems


def make_pair(tmp: Path, count: int, cli: str, turbo: Path, registry: LocalRegistry) -> Pair:
    started = time.perf_counter()
    pair = Pair(count, tmp / f"mlops-{count}", tmp / f"turbo-{count}")
    make_repo(pair.repo, count, f"{registry.host}/{NAMESPACE}")
    tf.seed_registry(cli, pair.repo, registry.host)
    tf.check_plan(cli, pair.repo, count, changed=())
    tf.make_workspace(pair.ws, count)
    tf.fill_cache(turbo, pair.ws, count, jobs=max(2, 2 * common.nproc()))
    print(f"set-up: {count} components for mlops and for turbo in "
          f"{time.perf_counter() - started:.0f}s (not measured)", flush=True)
    return pair


# -- measurements -------------------------------------------------------------


def plan_items(cli: str, turbo: Path, pair: Pair, what: str) -> list:
    """(name, fn, note) of the mlops and turbo dry runs of one pair, fresh processes."""
    env = tf.turbo_environ()
    return [
        (f"mlops build --dry-run, {pair.count:,} {what}",
         lambda: run([cli, "build", "--dry-run", "--repo", str(pair.repo)], cwd=pair.repo,
                     capture=False), ""),
        (f"turbo run build --dry=json, {pair.count:,} {what}",
         lambda: run(tf.turbo_dry_argv(turbo, pair.ws), cwd=pair.ws, env=env, capture=False),
         ""),
    ]


def no_memo_item(cli: str, pair: Pair) -> tuple:
    """The dry run with its memo removed first: what the first dry run after a change
    takes (it plans, and writes the memo again)."""
    memo = pair.repo / ".git" / PLAN_MEMO

    def plan() -> None:
        memo.unlink(missing_ok=True)
        run([cli, "build", "--dry-run", "--repo", str(pair.repo)], cwd=pair.repo, capture=False)

    return (f"mlops build --dry-run without its memo, {pair.count:,} unchanged", plan,
            "the memo removed first: a plan, as after any change")


def startup_items(pair: Pair) -> list:
    py = sys.executable
    return [
        ("python3 -c pass", lambda: run([py, "-c", "pass"], cwd=pair.repo, capture=False),
         "bare interpreter start-up"),
        ("python3 -c 'import mlops.cli, mlops.commands.build'",
         lambda: run([py, "-c", "import mlops.cli, mlops.commands.build"], cwd=pair.repo,
                     capture=False), "start-up + the dry run's imports"),
    ]


# The plan's git processes as `gitops.tree_state` starts them (three at once), read to
# the end and not parsed, from a bare interpreter: what any Python CLI that asks git
# about the work tree pays before it imports or plans anything.
GIT_FLOOR = """
import subprocess
procs = [subprocess.Popen(["git", *a], stdout=subprocess.PIPE) for a in (
    ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
    ["ls-files", "-s", "-z", "--", "components"],
    ["diff-index", "--name-only", "-z", "HEAD", "--", "components"])]
for p in procs:
    p.communicate()
"""


def floor_item(pair: Pair) -> tuple:
    return (f"python3 start-up + the plan's git processes, {pair.count:,}",
            lambda: run([sys.executable, "-c", GIT_FLOOR], cwd=pair.repo, capture=False),
            "no imports, no planning: the least a Python CLI that asks git can take")


def measure_all(cli: str, turbo: Path, small: Pair, large: Pair, n: int) -> dict[str, Timing]:
    print(f"measuring: median of {n} rounds after one warm-up round, in turns", flush=True)
    res: dict[str, Timing] = {}
    timings = common.measure_turns(
        [*plan_items(cli, turbo, small, "unchanged"), *startup_items(small),
         no_memo_item(cli, small)], n)
    res.update(zip(("small_mlops", "small_turbo", "bare", "imports", "small_nomemo"), timings,
                   strict=True))
    timings = common.measure_turns(
        [*plan_items(cli, turbo, large, "unchanged"), floor_item(large),
         no_memo_item(cli, large)], n)
    res.update(zip(("large_mlops", "large_turbo", "large_floor", "large_nomemo"), timings,
                   strict=True))
    name = tf.change_one(small.repo)
    tf.change_one(small.ws)
    tf.check_plan(cli, small.repo, small.count, changed=(name,))
    tf.check_turbo(turbo, small.ws, small.count, changed=(name,))
    timings = common.measure_turns(plan_items(cli, turbo, small, "one changed"), n)
    res.update(zip(("changed_mlops", "changed_turbo"), timings, strict=True))
    return res


# -- report -------------------------------------------------------------------


def ratios(res: dict[str, Timing], small: int, large: int) -> list[list[str]]:
    def r(a: str, b: str) -> float:
        return res[a].median / res[b].median

    rows = []
    for key, what, target in (("small", f"{small} unchanged", SAME_TARGET),
                              ("changed", f"{small}, one changed", SAME_TARGET),
                              ("large", f"{large:,} unchanged", FAST_TARGET)):
        ratio = r(f"{key}_mlops", f"{key}_turbo")
        label = "no slower" if target == SAME_TARGET else f"{1 / target:g}× faster"
        rows.append(common.target_row(f"build --dry-run / turbo --dry=json, {what}", ratio,
                                      f"≤ {target:g}× (DESIGN.md: {label})", ratio <= target))
    for key, what in (("small", f"{small} unchanged"), ("large", f"{large:,} unchanged")):
        rows.append(common.target_row(
            f"build --dry-run without its memo / turbo --dry=json, {what}",
            r(f"{key}_nomemo", f"{key}_turbo"), "— (the first dry run after a change)", True))
    rows.append(common.target_row(f"python3 -c pass / turbo --dry=json, {small} unchanged",
                                  r("bare", "small_turbo"), "— (interpreter start-up alone)",
                                  True))
    rows.append(common.target_row(
        f"python3 start-up + git, no planning / turbo --dry=json, {large:,} unchanged",
        r("large_floor", "large_turbo"), "— (any Python CLI that asks git; the rest is mlops')",
        True))
    return rows


def breakdown(res: dict[str, Timing], small: int) -> str:
    bare, imports, plan = (res[k].median for k in ("bare", "imports", "small_mlops"))

    def ms(seconds: float) -> str:  # a difference of medians: noise can make it negative
        return ("-" if seconds < 0 else "") + common.fmt_seconds(abs(seconds))

    lookup = res["changed_mlops"].median - plan
    return (f"Where the {small}-component dry run's {ms(plan)} go (medians of the same "
            f"rounds): interpreter start-up {ms(bare)}, mlops' imports "
            f"{ms(imports - bare)}, the answer from the memo and its git processes "
            f"{ms(plan - imports)}; turbo takes {ms(res['small_turbo'].median)} in all. "
            f"Without the memo (a plan) the dry run takes {ms(res['small_nomemo'].median)}. "
            f"One changed component adds {ms(lookup)} to mlops: one registry lookup, "
            "most of it loading the registry adapter and its HTTP library.")


def _busy(busy: float | None) -> str:
    if busy is None:
        return "CPU use by other work unknown"
    noisy = " (busy: the figures are noisy)" if busy > BUSY else ""
    return f"CPUs {busy:.0%} busy with other work just before measuring{noisy}"


def report(res: dict[str, Timing], args: argparse.Namespace, turbo: Path, setup: float,
           revision: str, busy: float | None) -> str:
    order = ["small_mlops", "small_nomemo", "small_turbo", "bare", "imports", "changed_mlops",
             "changed_turbo", "large_mlops", "large_nomemo", "large_turbo", "large_floor"]
    timings = common.timing_rows([res[k] for k in order])
    rows = ratios(res, args.small, args.large)
    print(f"\n{common.text_table(common.TIMING_HEADERS, timings)}\n")
    print(common.text_table(common.TARGET_HEADERS, rows))
    print(f"\n{breakdown(res, args.small)}")
    m = common.machine()
    git_version = common.tool_version(["git", "--version"]).removeprefix("git version ")
    title = (f"Build plan against Turborepo (`mlops build --dry-run`, {args.small} and "
             f"{args.large:,} components)")
    return f"""### {title}

Targets (DESIGN.md, "Performance targets"): the dry run no slower than
`turbo run build --dry=json` on an equivalent {args.small}-package workspace, with
nothing changed and with one component changed, and 2× faster at {args.large:,}.

- Date: {m['date']}
- Code: `mlops/` as of commit {common.revision_since(revision)}
- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']},
  git {git_version}, turbo {tf.TURBO_VERSION} (its native binary,
  `@turbo/{turbo.parent.parent.name}`), node {common.tool_version(["node", "--version"])};
  {_busy(busy)}
- Reproduce: `{common.command_line(__file__)}` (or `make bench`)
- Method: each pair run in turns, fresh processes, median of {args.repeat} rounds after
  one warm-up round. The mlops repository is the generated one of `build_plan.py`
  (component.yaml, a 3-line Dockerfile, 2-3 source files per component); each
  component's image is in a registry on 127.0.0.1 and in the dry run's local
  cache. The Turborepo workspace has the same files, plus a `package.json` per
  component whose `build` task's inputs are the package's folder; one real
  `turbo run build` filled turbo's local cache. "Unchanged", mlops answers
  from the memo of its last dry run (`.git/{PLAN_MEMO}`, written by the
  dry run before it, in the same state), as a repeated dry run in a clone does; "without its memo"
  removes that file before each run, so mlops plans, as the first dry run
  after any change does. "One changed" is a committed
  one-line edit of `{tf.CHANGED}` in both: turbo misses one task, mlops asks
  the registry for one image, which it does not have (a plan with an image
  to build is never kept in the memo). The floor at {args.large:,} is
  `python3 -c` starting the plan's three git processes (`rev-parse`, `ls-files -s`,
  `diff-index HEAD`) at once and reading their output, nothing else. Set-up took
  {setup:.0f} s, not measured. mlops is `{Path(common.mlops_cli()).name}`, the
  console script of `{Path(sys.executable).name}`, its bytecode written first.

{common.md_table(common.TIMING_HEADERS, timings)}

{breakdown(res, args.small)}

{common.md_table(common.TARGET_HEADERS, rows)}
"""


# -- main ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not common.ready_to_run("build_plan_turbo", preflight()):
        return 1
    revision = common.project_revision()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-turbo-"))
    registry = LocalRegistry(tmp / "registry")
    try:
        return _run(args, tmp, registry, revision)
    except BenchError as exc:
        print(f"build_plan_turbo: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path, registry: LocalRegistry, revision: str) -> int:
    started = time.perf_counter()
    cli = common.mlops_cli()
    common.byte_compile()
    turbo = tf.install_turbo(tmp / "npm")
    registry.start()
    small = make_pair(tmp, args.small, cli, turbo, registry)
    large = make_pair(tmp, args.large, cli, turbo, registry)
    setup = time.perf_counter() - started
    busy = common.cpu_busy()
    results = measure_all(cli, turbo, small, large, args.repeat)
    section = report(results, args, turbo, setup, revision, busy)
    if not args.no_readme:
        common.write_section(SECTION, section)
        print(f"\nwrote the {SECTION} section of {common.README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
