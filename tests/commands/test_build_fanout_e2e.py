"""Fan-out as CI runs it: 30 components planned into 3 shards, each shard built by its
own `mlops` process in its own clone with its own DOCKER_CONFIG (as separate
runners would be), the parts merged, the record promoted into dev. The merged
record is what a one-runner build of the same commit records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import git, tiny_component
from tests.support.promotion import Playground, repo_files

pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.slow]

EXTRA = 27  # beside the three the training pipeline uses: 30 components
PREBUILT = ("c01", "c02", "c03")  # in the registry before planning: reused


def mlops(cwd, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mlops", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def finished(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    return out


@pytest.fixture
def thirty(project, registry, tmp_path):
    _, ns = registry
    files = repo_files(ns)
    for i in range(1, EXTRA + 1):
        name = f"c{i:02d}"
        files.update(tiny_component(name))
        files[f"components/{name}/src/data.txt"] = "x" * (1000 * (i % 7 + 1))
    play = Playground(tmp_path, project(files))
    finished(mlops(play.clone, "build", *PREBUILT))
    return play


def runner_clone(play, tmp_path, k: int):
    """A runner's own checkout and Docker client configuration."""
    work = tmp_path / f"runner-{k}"
    git(tmp_path, "clone", "-q", str(play.remote), str(work))
    config = tmp_path / f"docker-config-{k}"
    config.mkdir()
    (config / "config.json").write_text("{}")
    return work, {"DOCKER_CONFIG": str(config)}


def test_three_shard_processes_merge_into_the_one_runner_record(thirty, tmp_path):
    play = thirty
    plan_path = tmp_path / "plan.json"
    finished(mlops(play.clone, "build", "--plan", "--shards", "3", "--output", str(plan_path)))
    plan = json.loads(plan_path.read_text())
    assert plan["shards"] == 3 and len(plan["components"]) == 30
    assert sorted(c["component"] for c in plan["components"] if c["action"] == "reuse") == \
        list(PREBUILT)
    loads = [e["size"] for e in plan["matrix"]["include"]]
    biggest = max(c["size"] for c in plan["components"] if c["action"] == "build")
    assert max(loads) - min(loads) <= biggest  # balanced within the largest item

    runners = [runner_clone(play, tmp_path, k) for k in range(3)]
    procs = [mlops(work, "build", "--shard", str(k), "--plan", str(plan_path), "--push",
                   "--output", str(tmp_path / f"part-{k}.json"), env=env)
             for k, (work, env) in enumerate(runners)]  # side by side, as a matrix runs
    for proc in procs:
        finished(proc)
    for k in range(3):
        part = json.loads((tmp_path / f"part-{k}.json").read_text())
        assert [b["component"] for b in part["builds"]] == \
            plan["matrix"]["include"][k]["components"].split()
        assert all(b["status"] == "built" and b["digest"] for b in part["builds"])

    merge_work, merge_env = runner_clone(play, tmp_path, 3)
    merged_path = tmp_path / "build.json"
    finished(mlops(merge_work, "build", "--merge",
                   *(str(tmp_path / f"part-{k}.json") for k in range(3)),
                   "--plan", str(plan_path), "--output", str(merged_path), env=merge_env))
    merged = json.loads(merged_path.read_text())
    assert [b["component"] for b in merged["builds"]] == [c["component"] for c in
                                                          plan["components"]]

    single_path = tmp_path / "single.json"
    finished(mlops(play.clone, "build", "--output", str(single_path)))
    single = json.loads(single_path.read_text())
    digests = {b["component"]: b["digest"] for b in single["builds"]}
    assert {b["component"]: b["digest"] for b in merged["builds"]} == digests
    assert {b["component"]: b["input_hash"] for b in merged["builds"]} == \
        {b["component"]: b["input_hash"] for b in single["builds"]}
    assert all(b["status"] == "reused" for b in single["builds"])  # nothing left to build

    finished(mlops(play.clone, "promote", "--to", "dev", "--build", str(merged_path)))
    release = play.remote_show("environments/dev/release.yaml")
    for name, digest in digests.items():
        assert f"{name}:" in release and digest in release
