"""The build-plan benchmark's set-up: a repository of small components, built once.

Not measured. `make_repo` writes the components (two or three source files
each) and commits them; `full_build` runs one real `mlops build` so that every
image exists and the dry-run cache is filled; `check_noop` proves the measured
state is a true no-op. Used by benchmarks/build_plan.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from common import DOCKERFILE, GIT_ID, BenchError, run, stop

BASE_IMAGE = os.environ.get("MLOPS_BASE_IMAGE", "mlops-base/python:3.11-bookworm")
FULL_BUILD_TIMEOUT = 30 * 60


def component_files(i: int, name: str) -> dict[str, str]:
    files = {
        "component.yaml": f"name: {name}\nversion: 0.1.0\n",
        "Dockerfile": DOCKERFILE,
        "src/main.py": f'from util import greet\n\ngreet("{name}")\n',
        "src/util.py": f"def greet(who):\n    print('hello from', who, {i})\n",
    }
    if i % 2 == 0:  # 2 or 3 source files
        files["src/settings.json"] = json.dumps({"component": name, "index": i}) + "\n"
    return files


def make_repo(repo: Path, count: int, registry: str) -> None:
    repo.mkdir(parents=True)
    (repo / "mlops.yaml").write_text(
        f"registry: {registry}\n"
        f"build:\n  build_args: {{BASE_IMAGE: {BASE_IMAGE}}}\n"
    )
    for i in range(count):
        name = f"c{i:03d}"
        for rel, text in component_files(i, name).items():
            path = repo / "components" / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    git = ["git", *GIT_ID]
    run([*git, "init", "-q", "-b", "main"], cwd=repo)
    run([*git, "add", "-A"], cwd=repo)
    run([*git, "commit", "-q", "-m", f"{count} benchmark components"], cwd=repo)


DONE_LINE = re.compile(r"^\[(c\d+)\] (built|reused|failed)", re.M)


def full_build(cli: str, repo: Path, jobs: int, log_path: Path, count: int) -> float:
    """One real `mlops build`, so every image exists and the dry-run cache is filled."""
    argv = [cli, "build", "--repo", str(repo), "--jobs", str(jobs)]
    print(f"set-up: {' '.join(argv[:2])} --jobs {jobs} of {count} components "
          f"(not measured; log in the temp dir)", flush=True)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            last_note = start
            while proc.poll() is None:
                time.sleep(1)
                now = time.perf_counter()
                if now - last_note >= 30:
                    done = len(set(DONE_LINE.findall(log_path.read_text(errors="replace"))))
                    print(f"  ... {done}/{count} done after {now - start:.0f}s", flush=True)
                    last_note = now
                if now - start > FULL_BUILD_TIMEOUT:
                    raise BenchError(f"mlops build took over {FULL_BUILD_TIMEOUT}s; gave up")
        finally:
            stop(proc)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"the set-up mlops build exited {proc.returncode}:\n{tail}")
    print(f"set-up: built and pushed {count} components in {seconds:.0f}s", flush=True)
    return seconds


def check_noop(cli: str, repo: Path, count: int) -> None:
    """The state measured must be a true no-op: every component reused from the local cache."""
    doc = json.loads(run([cli, "build", "--dry-run", "--json", "--repo", str(repo)]))
    plan = doc.get("plan", [])
    wrong = [p for p in plan if p["action"] != "reuse" or "(local cache)" not in p["reason"]]
    if len(plan) != count or wrong:
        first = wrong[0] if wrong else None
        example = f"{first['component']}: {first['reason']}" if first else ""
        raise BenchError(
            f"the dry run is not a no-op from the local cache ({len(plan)} planned, "
            f"{len(wrong)} not reused from the cache) {example}"
        )
