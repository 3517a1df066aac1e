#!/usr/bin/env python3
"""Wall time of `make demo` (hack/demo.sh), cold and warm, and where it goes.

The demo is the whole loop: build, promote to dev, run the training pipeline,
promote to staging through the gates, then a prod canary on local serve
containers judged by a real Prometheus, a signed approval and 100%.

Cold: a new demo directory and an empty registry on a port of its own, so every
image is pushed and every pipeline compiled (Docker's layer cache stays warm: no
base image is pulled from anywhere here). Warm: the same directory again, its
registry restarted on the data the cold run pushed, so nothing is pushed. Each
figure is the median of N runs. The floor is the waiting the demo does on
purpose, fixed by its config: two canary steps, each a 15 s sleep for the first
window to fill plus an analysis of 3 measurements 15 s apart (the first
immediate), so 2 x (15 + 30) s.

Usage: python3 benchmarks/demo.py [--repeat N] [--no-readme]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import BenchError, Timing

NAME = "demo"
STEP_SLEEP = 15.0  # hack/demo.sh analyze_step: one window at the new split
ANALYSIS = (3, 15.0)  # hack/demo.sh --count 3 --interval 15s
CANARY_STEPS = 2  # 10% and 50% are analysed; 100% needs the approval only
FLOOR = CANARY_STEPS * (STEP_SLEEP + (ANALYSIS[0] - 1) * ANALYSIS[1])
RUN_TIMEOUT = 20 * 60
# The demo's "==> " headings that open each phase, in order.
PHASES = [
    ("build and push (warm: all reused)", "mlops build (registry"),
    ("promote to dev", "mlops promote --to dev"),
    ("run the training pipeline", "mlops run training"),
    ("promote to staging (gates)", "mlops promote --to staging"),
    ("serve containers and Prometheus, started in the background", "starting prod's stand-in"),
    ("canary: start, two analysed steps, approval, 100%", "mlops rollout start"),
    ("history and summary", "mlops history"),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=common.at_least(1), default=3,
                   help="timed runs of each kind (default 3: about 15 minutes)")
    p.add_argument("--no-readme", action="store_true", help="print only")
    return p.parse_args(argv)


def run_demo(demo_dir: Path, port: int, log_path: Path) -> tuple[float, dict[str, float]]:
    """One `bash hack/demo.sh`; its wall time and the time of each phase."""
    env = {**os.environ, "MLOPS_DEMO_DIR": str(demo_dir), "MLOPS_DEMO_PORT": str(port)}
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["bash", "hack/demo.sh"], cwd=common.REPO_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith("==> "):
                marks.append((line[4:].strip(), time.perf_counter() - start))
            if time.perf_counter() - start > RUN_TIMEOUT:
                proc.kill()
        code = proc.wait()
    total = time.perf_counter() - start
    if code != 0:
        raise BenchError(f"hack/demo.sh exited {code}:\n{common._tail(log_path.read_text())}")
    return total, phase_times(marks, total)


def phase_times(marks: list[tuple[str, float]], total: float) -> dict[str, float]:
    """Seconds from each phase's heading to the next phase's (or to the end)."""
    starts: list[tuple[str, float]] = []
    for name, prefix in PHASES:
        at = next((t for heading, t in marks if heading.startswith(prefix)), None)
        if at is None:
            raise BenchError(f"the demo printed no '==> {prefix}...' heading; update PHASES")
        starts.append((name, at))
    ends = [t for _, t in starts[1:]] + [total]
    times = {name: end - at for (name, at), end in zip(starts, ends, strict=True)}
    times["set-up before the first build"] = starts[0][1]
    return times


def stop_registry(demo_dir: Path) -> None:
    """The demo stops the registry it started on exit; this stops one an older demo
    script left running, or one a killed run could not stop."""
    pid_file = demo_dir / "registry" / "pid"
    if pid_file.is_file():
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass


def measure(args: argparse.Namespace, tmp: Path) -> tuple[list[Timing], list[Timing]]:
    cold = Timing("cold: new directory, empty registry", note="every image pushed")
    warm = Timing("warm: the same directory again", note="images reused")
    phases: dict[str, list[float]] = {}
    for i in range(args.repeat):
        demo_dir, port = tmp / f"demo-{i}", common.free_port()
        prefix = f"127.0.0.1:{port}/"
        try:
            for timing in (cold, warm):
                print(f"==> run {i + 1}/{args.repeat}: {timing.name}", file=sys.stderr)
                total, times = run_demo(demo_dir, port, tmp / f"demo-{i}-{len(timing.seconds)}.log")
                timing.seconds.append(total)
                if timing is warm:
                    for name, seconds in times.items():
                        phases.setdefault(name, []).append(seconds)
        finally:
            stop_registry(demo_dir)
            common.docker_remove_images(prefix)
    order = ["set-up before the first build", *(name for name, _ in PHASES)]
    breakdown = [Timing(f"warm: {name}", phases[name]) for name in order if name in phases]
    return [cold, warm], breakdown


def ratios(cold: Timing, warm: Timing) -> list[list[str]]:
    return [
        common.target_row("warm demo / its deliberate waits", warm.median / FLOOR,
                          "— (the waits are the canary's analysis windows)", True),
        common.target_row("cold demo / warm demo", cold.median / warm.median, "—", True),
    ]


def report(timings: list[Timing], breakdown: list[Timing], rows: list[list[str]],
           args: argparse.Namespace) -> str:
    m = common.machine()
    return "\n".join([
        "### Demo wall time (`make demo`, the whole loop)",
        "",
        "No DESIGN.md target; reported so that README's demo times stay true.",
        "",
        f"- Date: {m['date']}",
        f"- Code: `mlops/` and `hack/` as of commit {common.project_revision(['mlops', 'hack'])}",
        f"- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']}",
        f"- Reproduce: `{common.command_line(__file__)}` (or `make bench`)",
        f"- Method: {args.repeat} pairs of runs, each a cold run (new `MLOPS_DEMO_DIR`, "
        "new empty registry on a port of its own) then a warm run of the same directory; "
        "medians. Docker's layer cache is warm in both. The floor is what the demo waits "
        f"on purpose: {CANARY_STEPS} canary steps × (a {STEP_SLEEP:g} s window + "
        f"{ANALYSIS[0]} measurements {ANALYSIS[1]:g} s apart) = {FLOOR:g} s.",
        "",
        common.md_table(common.TIMING_HEADERS, common.timing_rows(timings)),
        "",
        "Where a warm run's time goes (from the demo's `==>` headings):",
        "",
        common.md_table(common.TIMING_HEADERS, common.timing_rows(breakdown)),
        "",
        common.md_table(common.TARGET_HEADERS, rows),
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("docker-registry") is None:
        print("demo: docker-registry is not installed (run hack/setup.sh)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        try:
            timings, breakdown = measure(args, Path(tmp))
        except BenchError as exc:
            print(f"demo: could not measure: {exc}", file=sys.stderr)
            return 1
    rows = ratios(*timings)
    print(common.text_table(common.TIMING_HEADERS, common.timing_rows([*timings, *breakdown])))
    print()
    print(common.text_table(common.TARGET_HEADERS, rows))
    if not args.no_readme:
        common.write_section(NAME, report(timings, breakdown, rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
