#!/usr/bin/env python3
"""The no-op build plan over 200 components (DESIGN.md, "Performance targets").

Target: `mlops build --dry-run` with nothing changed is at least 100x faster
than a `docker build` of every component with a warm layer cache. Its ratio to
the floor `git ls-files -s components | sha256sum` is context, not a target
(DESIGN.md's speed target for the plan is the Turborepo comparison,
build_plan_turbo.py).

Set-up, not measured: a generated git repository of 200 tiny components, a
registry on 127.0.0.1, and one real `mlops build --jobs 2`, so that every image
exists and the dry run's local cache (.git/mlops/build-cache.json) knows it:
the dry run is then a true no-op that needs no network. Every dry run below
plans: the memo of the last one (.git/mlops/plan-memo, which answers a
repeated dry run without planning) is removed before each, so these figures
are the plan's own cost; build_plan_turbo.py measures both.

Measured, each as the median of N runs after one warm-up:
  floor        git ls-files -s components | sha256sum (two processes, no shell)
  CLI plan     `mlops build --dry-run` as a fresh process, as a user runs it
  in-process   mlops.cli.main(["build", "--dry-run", ...]) after one import, so
               the plan's own cost without interpreter start-up and imports
  docker       `docker build` of K sample components, warm cache, one after the
               other, scaled up to all of them
Then one cProfile run of the in-process plan, top functions printed.

Usage: python3 benchmarks/build_plan.py [--repeat N] [--sample K] [--no-readme]
It rewrites its own section of benchmarks/README.md and exits 0 whether or not
the targets are met; 1 means it could not measure. The set-up (the generated
repository and its one real build) is in _build_plan_fixture.py.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import common
from _build_plan_fixture import BASE_IMAGE, check_noop, full_build, make_repo
from common import BenchError, LocalRegistry, Timing, fmt_ratio, run

from mlops.services.planmemo import MEMO as PLAN_MEMO  # under .git/

SECTION = "build_plan"
NAMESPACE = "bench"
FLOOR_CONTEXT = "— (context: DESIGN.md's plan target is against Turborepo)"
DOCKER_TARGET = 100.0  # the plan at least 100x faster than the docker rebuild
BUSY = 0.25  # CPU use by others above which the figures are flagged as noisy
PROFILE_TOP = 15
PROFILE_TOP_OWN = 10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--components", type=common.at_least(1), default=200, metavar="N",
                   help="components in the generated repository (default 200)")
    p.add_argument("--repeat", type=common.at_least(1), default=9, metavar="N",
                   help="timed runs per measurement, after one warm-up (default 9)")
    p.add_argument("--sample", type=common.at_least(1), default=10, metavar="K",
                   help="components the docker rebuild really builds (default 10)")
    p.add_argument("--jobs", type=common.at_least(1), default=2, metavar="N",
                   help="--jobs for the set-up build (default 2)")
    p.add_argument("--no-readme", action="store_true",
                   help="print only; leave benchmarks/README.md alone")
    args = p.parse_args(argv)
    if args.sample > args.components:
        p.error("--sample cannot exceed --components")
    return args


# -- set-up -------------------------------------------------------------------


def preflight() -> list[str]:
    problems = []
    for tool in ("git", "sha256sum", "docker", "docker-registry"):
        if not shutil.which(tool):
            problems.append(f"{tool} is not installed (run hack/setup.sh)")
    if shutil.which("docker"):
        try:
            run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
            run(["docker", "image", "inspect", BASE_IMAGE], timeout=30)
        except BenchError as exc:
            problems.append(f"Docker Engine or base image {BASE_IMAGE} missing: "
                            f"{str(exc).splitlines()[-1]} (run hack/setup.sh)")
    try:
        import mlops.cli  # noqa: F401
    except ImportError as exc:
        problems.append(f"cannot import mlops ({exc}); pip install -e .")
    return problems


# -- measurements -------------------------------------------------------------


def sample_names(count: int, k: int) -> list[str]:
    """K components spread evenly over all of them."""
    return [f"c{(i * count) // k:03d}" for i in range(k)]


def docker_build_argv(repo: Path, name: str, image: str, quiet: bool) -> list[str]:
    """A plain `docker build`, tagged under this run's namespace so the cleanup removes it."""
    return [
        "docker", "build", *(["-q"] if quiet else []), "--network", "host",
        "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", f"{image}/{name}:docker-rebuild",
        str(repo / "components" / name),
    ]


def docker_cache_hits(repo: Path, names: list[str], image: str) -> int:
    """Build the sample with full output: how many builds took their layer from the cache."""
    hits = 0
    for name in names:
        out = run(docker_build_argv(repo, name, image, quiet=False), timeout=300)
        hits += ("Using cache" in out) or ("CACHED" in out)
    return hits


def measure_all(
    cli: str, repo: Path, image: str, args: argparse.Namespace
) -> dict[str, Timing]:
    n = args.repeat
    r = str(repo)
    results: dict[str, Timing] = {}

    print(f"measuring: median of {n} runs after one warm-up each", flush=True)
    results["floor"] = common.measure(
        "floor: git ls-files -s components | sha256sum",
        lambda: common.run_pipeline([["git", "ls-files", "-s", "components"], ["sha256sum"]],
                                    cwd=repo),
        n,
    )
    # Fresh processes run in the generated repository, as a user would run them
    # (and so that `python3 -c` cannot pick up a package from our own cwd).
    def cli_plan() -> None:
        forget_memo(repo)
        run([cli, "build", "--dry-run", "--repo", r], cwd=repo, capture=False)

    results["cli"] = common.measure("CLI plan: mlops build --dry-run (fresh process)",
                                    cli_plan, n, note="its memo removed first")

    import mlops.cli  # once; the first call below (the warm-up) also imports the build command

    with open(os.devnull, "w") as devnull:

        def in_process() -> None:
            forget_memo(repo)
            with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
                code = mlops.cli.main(["build", "--dry-run", "--repo", r])
            if code != 0:
                raise BenchError(f"mlops.cli.main returned {code} in-process")

        results["inproc"] = common.measure(
            "in-process plan: mlops.cli.main([build, --dry-run])", in_process, n,
            note="after import and one warm-up",
        )
    results["bare"] = common.measure(
        "python3 -c pass",
        lambda: run([sys.executable, "-c", "pass"], cwd=repo, capture=False),
        n,
        note="informational: bare interpreter start-up",
    )
    results["startup"] = common.measure(
        "python3 start-up + import mlops.cli, mlops.commands.build",
        lambda: run([sys.executable, "-c", "import mlops.cli, mlops.commands.build"],
                    cwd=repo, capture=False),
        n,
        note="informational: what a fresh process adds",
    )

    names = sample_names(args.components, args.sample)
    # Two untimed passes: the warm-up, then the check that the cache is warm. The
    # layers `mlops build` made need not match: it sends its own normalized tar.
    first = docker_cache_hits(repo, names, image)
    warm = docker_cache_hits(repo, names, image)
    print(f"docker sample: {first}/{len(names)} cache hits on the first build, "
          f"{warm}/{len(names)} once warm", flush=True)
    if warm < len(names):
        print("warning: the docker layer cache is not warm for the whole sample", flush=True)

    def docker_sample() -> None:
        for name in names:
            run(docker_build_argv(repo, name, image, quiet=True), timeout=300)

    sample = common.measure(
        f"docker build of {len(names)} sample components (warm cache)", docker_sample, n,
        warmup=0,  # the two docker_cache_hits passes were the warm-up
        note="one after the other, --network host",
    )
    results["docker_sample"] = sample
    results["docker"] = sample.scaled(
        args.components / len(names),
        f"docker rebuild of all {args.components}, scaled from {len(names)}",
        note=f"sample median × {args.components}/{len(names)}",
    )
    return results


# -- profile ------------------------------------------------------------------


def _where(filename: str, line: int, func: str) -> str:
    if filename == "~":
        return func  # a built-in, like <method 'read' of '_io.BufferedReader' objects>
    # As a module path: strip the longest sys.path entry (mlops/..., ruamel/..., git/...).
    candidates = [*sys.path, str(common.REPO_ROOT)]  # editable installs are not on sys.path
    roots = [p for p in candidates if p and filename.startswith(p.rstrip("/") + "/")]
    path = filename[len(max(roots, key=len).rstrip("/")) + 1 :] if roots else filename
    return f"{path}:{line}({func})"


def forget_memo(repo: Path) -> None:
    """The dry run's memo removed, so that the next dry run plans."""
    (repo / ".git" / PLAN_MEMO).unlink(missing_ok=True)


def profile_plan(repo: Path) -> str:
    """One cProfile run of the in-process plan; the top functions as text."""
    import mlops.cli

    prof = cProfile.Profile()
    forget_memo(repo)
    with open(os.devnull, "w") as devnull:
        with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            prof.enable()
            code = mlops.cli.main(["build", "--dry-run", "--repo", str(repo)])
            prof.disable()
    if code != 0:
        raise BenchError(f"profiled run returned {code}")
    stats = pstats.Stats(prof)
    cumulative = [v[3] for v in stats.stats.values()]  # type: ignore[attr-defined]
    total = max(stats.total_tt, *cumulative, 1e-9)  # type: ignore[attr-defined]

    def listing(key: str, top: int) -> str:
        stats.sort_stats(key)
        rows = []
        for fn in stats.fcn_list[:top]:  # type: ignore[attr-defined]
            _cc, ncalls, own, cum, _callers = stats.stats[fn]  # type: ignore[attr-defined]
            rows.append([str(ncalls), f"{own * 1e3:.1f}", f"{cum * 1e3:.1f}",
                         f"{100 * cum / total:.0f}%", _where(*fn)])
        return common.text_table(["calls", "own ms", "cum ms", "cum %", "function"], rows)

    return (
        f"profile of one in-process plan ({total * 1e3:.0f} ms under cProfile, "
        f"main thread)\n\ntop {PROFILE_TOP} by cumulative time:\n"
        f"{listing('cumulative', PROFILE_TOP)}\n\n"
        f"top {PROFILE_TOP_OWN} by own time:\n{listing('tottime', PROFILE_TOP_OWN)}"
    )


# -- report -------------------------------------------------------------------


def ratios(res: dict[str, Timing]) -> list[list[str]]:
    floor, cli, inproc, docker = (res[k].median for k in ("floor", "cli", "inproc", "docker"))
    return [
        common.target_row("CLI plan / floor", cli / floor, FLOOR_CONTEXT, True),
        common.target_row("in-process plan / floor (the plan's own cost)", inproc / floor,
                          FLOOR_CONTEXT, True),
        common.target_row("docker rebuild (scaled) / CLI plan", docker / cli,
                          f"≥ {DOCKER_TARGET:g}× (DESIGN.md)", docker / cli >= DOCKER_TARGET),
        ["docker rebuild (scaled) / in-process plan", fmt_ratio(docker / inproc), "—", "info"],
    ]


def _busy(busy: float | None) -> str:
    if busy is None:
        return "CPU use by other work unknown"
    noisy = " (busy: the figures are noisy)" if busy > BUSY else ""
    return f"CPUs {busy:.0%} busy with other work just before measuring{noisy}"


def _spread(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, … {names[-1]}"


def report(res: dict[str, Timing], args: argparse.Namespace, setup_seconds: float,
           cli: str, profile: str, revision_at_start: str, busy: float | None) -> str:
    order = ["floor", "cli", "inproc", "bare", "startup", "docker_sample", "docker"]
    timings = [res[k] for k in order]
    rows = ratios(res)
    print()
    print(common.text_table(common.TIMING_HEADERS, common.timing_rows(timings)))
    print()
    print(common.text_table(common.TARGET_HEADERS, rows))
    print()
    print(f"The docker rebuild is a sample of {args.sample} components built for real, "
          f"scaled up ×{args.components / args.sample:g} to {args.components}.")
    for row in rows[:3]:
        print(f"target {row[0]} {row[2]}: {row[3]} ({row[1]})")
    print()
    print(profile)

    m = common.machine()
    revision = common.revision_since(revision_at_start)
    docker_version = common.tool_version(["docker", "version", "--format", "{{.Server.Version}}"])
    git_version = common.tool_version(["git", "--version"]).removeprefix("git version ")
    names = sample_names(args.components, args.sample)
    return f"""### No-op build plan (`mlops build --dry-run`, {args.components} components)

Target (DESIGN.md, "Performance targets"): with nothing changed, the plan is
at least {DOCKER_TARGET:g}× faster than `docker build` of every component
with a warm cache. Its ratio to the floor `git ls-files -s components | sha256sum`
is context: DESIGN.md's speed target for the plan is the Turborepo comparison
(`build_plan_turbo.py`, below).

- Date: {m['date']}
- Code: `mlops/` as of commit {revision}
- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']},
  Docker Engine {docker_version}, git {git_version}; {_busy(busy)}
- Reproduce: `{common.command_line(__file__)}` (or `make bench`)
- Method: median of {args.repeat} runs after one warm-up. A generated repository
  of {args.components} components (`component.yaml`, a 3-line Dockerfile, 2-3
  source files each), all built and pushed once by a real
  `mlops build --jobs {args.jobs}` ({setup_seconds:.0f} s, not measured) to a local
  registry, so the dry run reuses every image from its local cache
  (`.git/mlops/build-cache.json`) and needs no network. The CLI is
  `{Path(cli).name}`, the console script of `{Path(sys.executable).name}`.
  The docker rebuild builds {args.sample} of them for real ({_spread(names)};
  one after the other, `--network host`, layer cache warm) and is scaled
  ×{args.components / args.sample:g} to all {args.components}.

{common.md_table(common.TIMING_HEADERS, common.timing_rows(timings))}

{common.md_table(common.TARGET_HEADERS, rows)}
"""


# -- main ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not common.ready_to_run("build_plan", preflight()):
        return 1
    revision = common.project_revision()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-build-plan-"))
    registry = LocalRegistry(tmp / "registry")
    namespace = f"{registry.host}/{NAMESPACE}"  # every image of this run, for the cleanup
    started = False
    try:
        cli = common.mlops_cli()
        registry.start()
        started = True
        repo = tmp / "repo"
        make_repo(repo, args.components, namespace)
        setup_seconds = full_build(cli, repo, args.jobs, tmp / "build.log", args.components)
        check_noop(cli, repo, args.components)
        busy = common.cpu_busy()
        if busy is not None and busy > BUSY:
            print(f"note: the CPUs were {busy:.0%} busy with other work before measuring; "
                  "the figures will be noisy", flush=True)
        start = time.perf_counter()
        results = measure_all(cli, repo, namespace, args)
        profile = profile_plan(repo)
        print(f"measured in {time.perf_counter() - start:.0f}s", flush=True)
        section = report(results, args, setup_seconds, cli, profile, revision, busy)
        if not args.no_readme:
            common.write_section(SECTION, section)
            print(f"\nwrote the {SECTION} section of {common.README}")
    except BenchError as exc:
        print(f"build_plan: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.stop()
        if started:
            removed = common.docker_remove_images(f"{namespace}/")
            if removed:
                print(f"cleanup: removed {removed} local image tags of this run", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
