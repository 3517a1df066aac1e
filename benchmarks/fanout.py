#!/usr/bin/env python3
"""Fan-out builds: planning 1,000 components, and three shard processes against one build.

Issue 19 ("fan-out builds"): plan time at 1,000 components; the wall time of
3 shard processes against one `--jobs 2` build on the same machine, reported,
not asserted. Nothing here has a target: every ratio is context ("info").

1. Plan. A generated repository of N components (default 1,000; the
   build-plan benchmark's components: `component.yaml`, a 3-line Dockerfile,
   2-3 source files) whose images are not in the registry (a fresh namespace
   of a local `docker-registry`; nothing pushed), so every component is asked
   for. Measured in turns, fresh processes, after one warm-up of each:
     plan        mlops build --plan --shards 8 --output plan.json
     baseline    mlops build --dry-run (it too asks the registry for every
                 component: its local cache knows no image)

2. Fan-out. A generated repository of 30 tiny components on the local base
   image (`COPY src/ /app/`, no test) with a local registry. Before every
   trial a new salt is committed into each component's `src/`, so that every
   trial builds, and pushes, all 30 (a new layer each). In turns, after one
   warm-up round of both:
     A  mlops build --jobs 2 --output b.json (one process)
     B  mlops build --plan --shards 3; the 3 `mlops build --shard K` processes
        started together (each with its own DOCKER_CONFIG); wait for all;
        mlops build --merge part-0.json part-1.json part-2.json
     C  mlops build --jobs 3 (one process; context: B's concurrency without
        the fan-out, so B / C is what the plan, merge and extra processes cost)
   B is timed whole (plan + shards + merge) and by parts. Every process has
   its own DOCKER_CONFIG (a `{}` config.json), A and C too.

Usage: python3 benchmarks/fanout.py [--components N] [--plan-repeat N]
                                     [--build-components N] [--repeat N] [--no-readme]
It rewrites its own section of benchmarks/README.md and exits 0; 1 means it
could not measure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import common
from _build_plan_fixture import BASE_IMAGE, make_repo
from common import DOCKERFILE, GIT_ID, BenchError, LocalRegistry, Timing, run

SECTION = "fanout"
PLAN_SHARDS = 8
SHARDS = 3
JOBS = 2
BUSY = 0.25  # warn above this share of the CPUs busy before measuring
TRIAL_TIMEOUT = 900


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--components", type=common.at_least(1), default=1000, metavar="N",
                   help="components of the planned repository (default 1000)")
    p.add_argument("--plan-repeat", type=common.at_least(1), default=7, metavar="N",
                   help="timed runs of the plan and its baseline, after one warm-up (default 7)")
    p.add_argument("--build-components", type=common.at_least(SHARDS), default=30, metavar="N",
                   help="components of the built repository (default 30)")
    p.add_argument("--repeat", type=common.at_least(1), default=3, metavar="N",
                   help="timed trials of each build, after one warm-up round (default 3)")
    p.add_argument("--no-readme", action="store_true",
                   help="print only; leave benchmarks/README.md alone")
    return p.parse_args(argv)


def preflight() -> list[str]:
    problems = []
    for tool in ("git", "docker", "docker-registry"):
        if not shutil.which(tool):
            problems.append(f"{tool} is not installed (run hack/setup.sh)")
    if shutil.which("docker"):
        try:
            run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
            run(["docker", "image", "inspect", BASE_IMAGE], timeout=30)
        except BenchError as exc:
            problems.append(f"Docker Engine or base image {BASE_IMAGE} missing: "
                            f"{str(exc).splitlines()[-1]} (run hack/setup.sh)")
    return problems


def docker_config(tmp: Path, name: str) -> dict[str, str]:
    """An environment with a Docker client configuration of its own, as a CI runner has."""
    config = tmp / "docker-config" / name
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.json").write_text("{}")
    return {**os.environ, "DOCKER_CONFIG": str(config)}


# -- 1. the plan at N components ------------------------------------------------


def measure_plan(cli: str, tmp: Path, namespace: str, args: argparse.Namespace
                 ) -> tuple[list[Timing], float]:
    repo = tmp / "plan-repo"
    start = time.perf_counter()
    make_repo(repo, args.components, namespace)
    setup_seconds = time.perf_counter() - start
    env = docker_config(tmp, "plan")
    plan_path = tmp / "plan-1000.json"
    plan_argv = [cli, "build", "--plan", "--shards", str(PLAN_SHARDS), "--output",
                 str(plan_path), "--repo", str(repo)]
    dry_argv = [cli, "build", "--dry-run", "--repo", str(repo)]

    # Untimed checks: every component is asked for and none is in the registry.
    run(plan_argv, env=env, capture=False)
    plan = json.loads(plan_path.read_text())
    to_build = [c for c in plan["components"] if c["action"] == "build"]
    if len(plan["components"]) != args.components or len(to_build) != args.components:
        raise BenchError(f"the plan has {len(plan['components'])} components, "
                         f"{len(to_build)} to build; expected {args.components} of each")
    if plan["shards"] != min(PLAN_SHARDS, args.components):
        raise BenchError(f"the plan has {plan['shards']} shards, not {PLAN_SHARDS}")
    dry = json.loads(run([*dry_argv, "--json"], env=env))
    dry_build = [p for p in dry.get("plan", []) if p["action"] == "build"]
    if len(dry_build) != args.components:
        raise BenchError(f"the dry run would build {len(dry_build)} components, "
                         f"not {args.components}")

    print(f"plan: {args.plan_repeat} rounds in turns after one warm-up "
          f"({args.components} components)", flush=True)
    timings = common.measure_turns([
        (f"mlops build --plan --shards {PLAN_SHARDS} --output plan.json (fresh process)",
         lambda: run(plan_argv, env=env, capture=False), ""),
        ("baseline: mlops build --dry-run (fresh process)",
         lambda: run(dry_argv, env=env, capture=False), "asks the registry too"),
    ], args.plan_repeat)
    shutil.rmtree(repo, ignore_errors=True)
    return timings, setup_seconds


# -- 2. three shard processes against one build --------------------------------


def make_build_repo(repo: Path, count: int, namespace: str) -> list[str]:
    """`count` tiny components on the local base image, committed."""
    repo.mkdir(parents=True)
    (repo / "mlops.yaml").write_text(
        f"registry: {namespace}\nbuild:\n  build_args:\n    BASE_IMAGE: {BASE_IMAGE}\n")
    names = [f"f{i:02d}" for i in range(count)]
    for name in names:
        folder = repo / "components" / name
        (folder / "src").mkdir(parents=True)
        (folder / "component.yaml").write_text(f"name: {name}\nversion: 0.1.0\n")
        (folder / "Dockerfile").write_text(DOCKERFILE)
        (folder / "src" / "main.py").write_text(f"print('{name}')\n")
        (folder / "src" / "salt.txt").write_text("initial\n")
    git = ["git", *GIT_ID]
    run([*git, "init", "-q", "-b", "main"], cwd=repo)
    run([*git, "add", "-A"], cwd=repo)
    run([*git, "commit", "-q", "-m", f"{count} tiny components"], cwd=repo)
    return names


def salt(repo: Path, names: list[str]) -> None:
    """A new salt in every component's src/ and a commit: every component needs building."""
    value = uuid.uuid4().hex
    for name in names:
        (repo / "components" / name / "src" / "salt.txt").write_text(value + "\n")
    git = ["git", *GIT_ID]
    run([*git, "add", "-A", "components"], cwd=repo)
    run([*git, "commit", "-q", "-m", f"salt {value}"], cwd=repo)


def all_built(record_path: Path, names: list[str], what: str) -> None:
    builds = json.loads(record_path.read_text()).get("builds", [])
    built = sorted(b["component"] for b in builds if b.get("status") == "built"
                   and b.get("digest"))
    if built != sorted(names):
        statuses = sorted({b.get("status", "?") for b in builds})
        raise BenchError(f"{what}: {len(built)} of {len(names)} components built "
                         f"(statuses: {', '.join(statuses)})")


@dataclass
class FanoutTrial:
    plan: float = 0.0
    shards: float = 0.0
    merge: float = 0.0
    shard_each: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.plan + self.shards + self.merge


def trial_single(cli: str, repo: Path, work: Path, env: dict[str, str],
                 names: list[str], jobs: int) -> float:
    record = work / "b.json"
    record.unlink(missing_ok=True)
    argv = [cli, "build", "--jobs", str(jobs), "--output", str(record), "--repo", str(repo)]
    start = time.perf_counter()
    run(argv, env=env, capture=False, timeout=TRIAL_TIMEOUT)
    seconds = time.perf_counter() - start
    all_built(record, names, f"the --jobs {jobs} build")
    return seconds


def trial_fanout(cli: str, repo: Path, work: Path, envs: list[dict[str, str]],
                 merge_env: dict[str, str], names: list[str]) -> FanoutTrial:
    plan_path = work / "plan.json"
    parts = [work / f"part-{k}.json" for k in range(SHARDS)]
    merged = work / "build.json"
    for path in (plan_path, merged, *parts):
        path.unlink(missing_ok=True)
    trial = FanoutTrial()

    start = time.perf_counter()
    run([cli, "build", "--plan", "--shards", str(SHARDS), "--output", str(plan_path),
         "--repo", str(repo)], env=merge_env, capture=False, timeout=TRIAL_TIMEOUT)
    trial.plan = time.perf_counter() - start

    start = time.perf_counter()
    logs = [open(work / f"shard-{k}.log", "wb") for k in range(SHARDS)]  # noqa: SIM115
    procs: list[subprocess.Popen] = []
    try:
        for k in range(SHARDS):
            procs.append(subprocess.Popen(
                [cli, "build", "--shard", str(k), "--plan", str(plan_path), "--output",
                 str(parts[k]), "--repo", str(repo)],
                env=envs[k], stdout=logs[k], stderr=subprocess.STDOUT))
        pending = dict(enumerate(procs))
        while pending:
            for k, proc in list(pending.items()):
                if proc.poll() is not None:
                    trial.shard_each.append(time.perf_counter() - start)
                    del pending[k]
            if time.perf_counter() - start > TRIAL_TIMEOUT:
                raise BenchError(f"the shards took over {TRIAL_TIMEOUT}s; gave up")
            time.sleep(0.02)
        trial.shards = time.perf_counter() - start
    finally:
        for proc in procs:
            common.stop(proc)
        for log in logs:
            log.close()
    failed = [k for k, proc in enumerate(procs) if proc.returncode != 0]
    if failed:
        k = failed[0]
        tail = "\n".join((work / f"shard-{k}.log").read_text(errors="replace")
                         .splitlines()[-15:])
        raise BenchError(f"shard {k} exited {procs[k].returncode}:\n{tail}")

    start = time.perf_counter()
    run([cli, "build", "--merge", *map(str, parts), "--plan", str(plan_path), "--output",
         str(merged), "--repo", str(repo)], env=merge_env, capture=False,
        timeout=TRIAL_TIMEOUT)
    trial.merge = time.perf_counter() - start
    all_built(merged, names, "the merged fan-out build")
    return trial


def measure_fanout(cli: str, tmp: Path, namespace: str, args: argparse.Namespace
                   ) -> dict[str, Timing]:
    repo = tmp / "build-repo"
    work = tmp / "build-work"
    work.mkdir()
    names = make_build_repo(repo, args.build_components, namespace)
    single_env = docker_config(tmp, "single")
    shard_envs = [docker_config(tmp, f"shard-{k}") for k in range(SHARDS)]
    merge_env = docker_config(tmp, "plan-merge")

    t = {
        "single": Timing(f"A: mlops build --jobs {JOBS} (one process)"),
        "jobs3": Timing(f"C: mlops build --jobs {SHARDS} (one process)",
                        note="context: B's concurrency, no fan-out"),
        "fanout": Timing(f"B: plan + {SHARDS} shard processes + merge",
                         note="the whole of B"),
        "plan": Timing(f"B, plan: mlops build --plan --shards {SHARDS}"),
        "shards": Timing(f"B, shards: {SHARDS} x mlops build --shard K, together",
                         note="start to the last one's exit"),
        "first": Timing("B, shards: the first shard to finish"),
        "merge": Timing(f"B, merge: mlops build --merge of {SHARDS} parts"),
    }
    rounds = 1 + args.repeat
    for round_ in range(rounds):
        label = "warm-up" if round_ == 0 else f"{round_}/{args.repeat}"
        salt(repo, names)
        a = trial_single(cli, repo, work, single_env, names, JOBS)
        salt(repo, names)
        b = trial_fanout(cli, repo, work, shard_envs, merge_env, names)
        salt(repo, names)
        c = trial_single(cli, repo, work, single_env, names, SHARDS)
        print(f"  round {label}: A {a:.1f}s; B {b.total:.1f}s (plan {b.plan:.2f}s, "
              f"shards {b.shards:.1f}s, merge {b.merge:.2f}s); C {c:.1f}s", flush=True)
        if round_ == 0:
            t["warmup"] = Timing("warm-up round: A, B, C", [a, b.total, c])
            continue
        t["single"].seconds.append(a)
        t["jobs3"].seconds.append(c)
        t["fanout"].seconds.append(b.total)
        t["plan"].seconds.append(b.plan)
        t["shards"].seconds.append(b.shards)
        t["first"].seconds.append(min(b.shard_each))
        t["merge"].seconds.append(b.merge)
    return t


# -- report ----------------------------------------------------------------------


def plan_rows(plan: list[Timing]) -> list[list[str]]:
    p, d = plan
    return [common.target_row(f"plan --shards {PLAN_SHARDS} / dry run", p.median / d.median,
                              "— (reported)", False)]


def fanout_rows(t: dict[str, Timing]) -> list[list[str]]:
    a = t["single"].median
    return [
        common.target_row(f"B (plan + {SHARDS} shards + merge) / A (--jobs {JOBS})",
                          t["fanout"].median / a, "— (reported)", False),
        common.target_row(f"B's {SHARDS} shards alone / A", t["shards"].median / a,
                          "— (reported)", False),
        common.target_row(f"B / C (--jobs {SHARDS}, the same concurrency)",
                          t["fanout"].median / t["jobs3"].median, "— (context)", False),
    ]


def section(args: argparse.Namespace, cli: str, plan: list[Timing], plan_setup: float,
            fan: dict[str, Timing], revision: str, busy: float | None) -> str:
    m = common.machine()
    docker_version = common.tool_version(["docker", "version", "--format", "{{.Server.Version}}"])
    git_version = common.tool_version(["git", "--version"]).removeprefix("git version ")
    busy_text = (f"CPUs {busy:.0%} busy with other work just before measuring"
                 if busy is not None else "CPU load before measuring unknown")
    warm = fan["warmup"].seconds
    order = ["single", "jobs3", "fanout", "plan", "shards", "first", "merge"]
    return f"""### Fan-out builds

Issue 19: plan time at {args.components:,} components; the wall time of
{SHARDS} shard processes against one `--jobs {JOBS}` build on the same machine.
Reported, not asserted: no target.

- Date: {m['date']}
- Code: `mlops/` as of commit {common.revision_since(revision)}
- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']},
  Docker Engine {docker_version}, git {git_version}; {busy_text}
- Reproduce: `{common.command_line(__file__)}` (or `make bench`)
- Method, plan: median of {args.plan_repeat} runs after one warm-up, the two in
  turns, fresh processes (`{Path(cli).name}`, the console script of
  `{Path(sys.executable).name}`). A generated repository of {args.components:,}
  components (`component.yaml`, a 3-line Dockerfile, 2-3 source files each;
  written and committed in {plan_setup:.1f} s, not measured) whose images are
  in no registry: a fresh namespace of a local `docker-registry` on 127.0.0.1,
  nothing pushed. Both ask the registry for every component's `ih-<hash>` tag
  (the dry run's local cache knows no image); checked before timing, every
  component is planned to build.
- Method, fan-out: {args.repeat} trials of each after one untimed warm-up round,
  A, B and C in turns. A generated repository of {args.build_components} tiny
  components on `{BASE_IMAGE}` (`COPY src/ /app/`, no test command) with a local
  registry. Before every trial (untimed) a new salt is committed into each
  component's `src/`, so every trial builds and pushes all
  {args.build_components} (a new layer each; checked from each build record).
  A is one `mlops build --jobs {JOBS}`. B is `mlops build --plan --shards {SHARDS}`,
  then the {SHARDS} `mlops build --shard K` processes started together in the
  same clone, then `mlops build --merge`; B is timed whole and by parts. The
  warm-up round's first build also pushes the base image's layers to the
  fresh registry (A {warm[0]:.0f} s, B {warm[1]:.0f} s, C {warm[2]:.0f} s; not
  counted). C is
  one `mlops build --jobs {SHARDS}`: context, B's concurrency without the
  fan-out. Every process has a Docker client configuration of its own
  (`DOCKER_CONFIG`, a `{{}}` config.json), A's and C's too.
- **What B / A is, and is not.** On this {m['nproc']}-core machine the {SHARDS}
  shard processes compete for the same cores and the same Docker Engine (and
  registry); on separate CI runners each shard would have its own. So B / A
  shows what the fan-out costs on one machine, not the speed-up of separate
  runners. B also runs {SHARDS} builds at a time where A runs {JOBS}, and a tiny
  component's build and push mostly wait on Docker Engine and the registry,
  not on the CPU, so that alone can put B ahead of A; B / C compares at the
  same concurrency, leaving the plan, the merge and the extra processes.

{common.md_table(common.TIMING_HEADERS, common.timing_rows(plan))}

{common.md_table(common.TARGET_HEADERS, plan_rows(plan))}

{common.md_table(common.TIMING_HEADERS, common.timing_rows(fan[k] for k in order))}

{common.md_table(common.TARGET_HEADERS, fanout_rows(fan))}
"""


# -- main ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not common.ready_to_run("fanout", preflight()):
        return 1
    revision = common.project_revision()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-fanout-"))
    registry = LocalRegistry(tmp / "registry")
    run_id = uuid.uuid4().hex[:8]
    prefix = f"{registry.host}/fanout-{run_id}"  # every image of this run, for the cleanup
    started = False
    try:
        cli = common.mlops_cli()
        common.byte_compile()
        registry.start()
        started = True
        busy = common.cpu_busy()
        if busy is not None and busy > BUSY:
            print(f"note: the CPUs were {busy:.0%} busy with other work before measuring; "
                  "the figures will be noisy", flush=True)
        start = time.perf_counter()
        plan, plan_setup = measure_plan(cli, tmp, f"{prefix}-plan", args)
        print(common.text_table(common.TIMING_HEADERS, common.timing_rows(plan)))
        print(f"fan-out: {args.repeat} trials of each in turns after one warm-up round "
              f"({args.build_components} components)", flush=True)
        fan = measure_fanout(cli, tmp, f"{prefix}-build", args)
        print(f"measured in {time.perf_counter() - start:.0f}s", flush=True)
        print()
        print(common.text_table(common.TIMING_HEADERS, common.timing_rows(plan)))
        print()
        print(common.text_table(common.TARGET_HEADERS, plan_rows(plan)))
        print()
        print(common.text_table(common.TIMING_HEADERS,
                                common.timing_rows(v for k, v in fan.items() if k != "warmup")))
        print()
        print(common.text_table(common.TARGET_HEADERS, fanout_rows(fan)))
        if not args.no_readme:
            common.write_section(SECTION, section(args, cli, plan, plan_setup, fan, revision,
                                                  busy))
            print(f"\nwrote the {SECTION} section of {common.README}")
    except BenchError as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.stop()
        if started:
            removed = common.docker_remove_images(prefix)
            if removed:
                print(f"cleanup: removed {removed} local image tags of this run", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
