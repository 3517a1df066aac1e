"""`make demo` end to end: build, promote, run, canary into prod, approval, 100%.

Runs `bash hack/demo.sh` as a user would, in a directory and on a registry port
of its own, then checks the summary, the demo remote, `mlops history` and that
nothing the demo started is still running. Every service it needs is real, so
a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.support.services import free_port

pytestmark = pytest.mark.slow

PRINCIPAL = "demo-release-manager@example.com"
TIMEOUT = 900  # seconds; about 3-4 minutes with a fresh registry, 2 warm
# The canary analysis window (MLOPS_DEMO_WINDOW_SECONDS): 5 s instead of the demo's 15 s
# saves a minute of waiting; Prometheus scrapes every second, so each window still holds
# real samples, and the demo scales min_requests to it (20 for 15 s, so 7 for 5 s).
WINDOW, MIN_REQUESTS = 5, 7


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes (zombies aside) whose arguments contain `text`,
    this test process aside. (Not "any process naming pytest": a demo directory under
    pytest's tmp_path names pytest-of-<user>, and so would every leftover.)"""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()):
            continue
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args and not _zombie(int(proc.name)):
            found.append(args.strip())
    return found


def _containers(label: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=mlops-demo={label}"],
                          capture_output=True, text=True, check=True).stdout.split()


def _run_demo(demo: Path, port: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLOPS_REGISTRY", "MLOPS_PROMETHEUS_URL")}
    env.update(MLOPS_DEMO_DIR=str(demo), MLOPS_DEMO_PORT=str(port),
               MLOPS_DEMO_WINDOW_SECONDS=str(WINDOW))
    proc = subprocess.Popen(["bash", "hack/demo.sh"], cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the demo's trap removes what it started
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"the demo took more than {TIMEOUT}s:\n{out[-6000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _work_tree_state() -> dict[str, str]:
    """What `make demo` must leave as it was in the repository it runs from: the files git
    tracks or would add (ignored ones, like __pycache__, aside), HEAD, every ref, the config."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout

    return {"status": git("status", "--porcelain=v1", "--untracked-files=all"),
            "diff": git("diff", "HEAD"), "head": git("rev-parse", "HEAD"),
            "refs": git("for-each-ref"), "config": git("config", "--local", "--list")}


def _stop_registry(demo: Path) -> None:
    pidfile = demo / "registry" / "pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and str(demo).encode() in cmdline.read_bytes():
            os.kill(pid, signal.SIGTERM)
    shutil.rmtree(demo / "registry" / "data", ignore_errors=True)  # hundreds of MB of layers


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The finished demo: (its directory, its output)."""
    for tool in ("docker", "docker-registry", "prometheus", "ssh-keygen", "git"):
        if shutil.which(tool) is None:
            pytest.fail(f"the demo needs {tool}; run hack/setup.sh as root")
    path = tmp_path_factory.mktemp("demo") / "demo"
    try:
        before = _work_tree_state()
        result = _run_demo(path, free_port())
        leftovers = {"containers": _containers(str(path)),
                     # the serve containers' Prometheus and load (canary/), and the registry
                     # the demo started (registry/config.yml): anything naming its directory
                     "processes": _processes_mentioning(str(path)),
                     "work tree": (before, _work_tree_state())}
        yield path, result, leftovers
    finally:
        subprocess.run([shutil.which("python3") or "python3", "hack/demo_canary.py", "down",
                        "--dir", str(path / "canary"), "--label", str(path)], cwd=REPO_ROOT,
                       capture_output=True)
        _stop_registry(path)


def _finished(demo) -> tuple[Path, str]:
    path, result, _ = demo
    assert result.returncode == 0, f"demo exited {result.returncode}:\n{result.stdout[-6000:]}"
    return path, result.stdout


def _summary(out: str) -> str:
    assert "\n==> summary\n" in out, out[-3000:]
    return out.split("\n==> summary\n", 1)[1]


def test_the_summary_tells_the_whole_loop(demo):
    _, out = _finished(demo)
    summary = _summary(out)
    assert re.search(r"^prod: release r-[0-9a-f]{12} at 100% \(rollout complete\)", summary,
                     re.M), summary
    assert re.search(rf"^  100%: approved by {re.escape(PRINCIPAL)} \(signed commit [0-9a-f]{{12}}",
                     summary, re.M), summary
    for step in (10, 50):
        assert re.search(rf"^  {step}%: analysis pass .*load \d+ canary \+ \d+ stable", summary,
                         re.M), summary
    assert "pass accuracy-threshold" in summary and "pass roc_auc-threshold" in summary
    assert re.search(rf"^prod's first release r-[0-9a-f]{{12}}: 100% at once \(first release: "
                     rf"no baseline\), approved by {re.escape(PRINCIPAL)}", summary, re.M), summary
    assert (f"3 x {WINDOW}s (repo: 5 x 1m), min_requests {MIN_REQUESTS} (repo: 50)"
            in summary), summary
    assert re.search(r"^total wall time \d+m\d\ds", summary, re.M), summary


def test_the_remote_has_prod_at_100_percent_approved(demo):
    path, out = _finished(demo)
    release_id = re.search(r"^prod: release (r-[0-9a-f]{12})", _summary(out), re.M).group(1)
    text = subprocess.run(["git", "--git-dir", str(path / "remote.git"), "show",
                           "main:environments/prod/release.yaml"],
                          capture_output=True, text=True, check=True).stdout
    prod = yaml.safe_load(text)
    assert prod["id"] == release_id
    assert prod["rollout"]["state"] == "complete" and prod["rollout"]["percent"] == 100
    assert prod["rollout"]["steps"] == [10, 50]
    assert prod["approval"]["approver"] == PRINCIPAL


def test_history_has_every_rollout_step(demo):
    path, _ = _finished(demo)
    proc = subprocess.run(["mlops", "history", "--repo", str(path / "work"), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)["entries"]
    actions = [(e["action"], e["env"]) for e in reversed(entries)]
    assert actions == [("promote", "dev"), ("promote", "staging"), ("approve", "prod"),
                       ("rollout-complete", "prod"), ("promote", "staging"),
                       ("rollout-start", "prod"), ("rollout-step", "prod"), ("approve", "prod"),
                       ("rollout-complete", "prod")], actions
    first = entries[5]  # prod's first release: no baseline, so 100% at once, approved
    assert first["note"] == "first release: no baseline" and first["canary"] == "100"
    assert first["approver"] == PRINCIPAL
    complete = entries[0]
    assert complete["approver"] == PRINCIPAL and complete["analysis"].startswith("pass at 50%")
    verified = [(e["action"], e["env"]) for e in reversed(entries) if e["provenance"]]
    assert verified == [("promote", "staging"), ("rollout-complete", "prod"),
                        ("promote", "staging"), ("rollout-start", "prod")], verified
    builder = "demo-ci-builder@example.com"
    for found in (e["provenance"] for e in entries if e["provenance"]):
        assert found == dict.fromkeys(("evaluate", "preprocess", "serve", "train"), builder)


def test_a_tampered_image_was_refused_and_put_back(demo):
    path, out = _finished(demo)
    assert "\n==> a tampered image: other content pushed by hand under serve's ih- tag" in out
    assert "no signed provenance for 127.0.0.1:" in out and "refused with exit 4" in out
    tampered = json.loads((path / "tampered.json").read_text())
    assert tampered["exit"] == 4 and "/serve@" in tampered["error"]
    assert re.search(r"^  tampered serve \(sha256:[0-9a-f]{12}\.\.\.\): refused with exit 4",
                     _summary(out), re.M)
    record = json.loads((path / "build.json").read_text())
    assert all(b["provenance"]["builder"] == "demo-ci-builder@example.com"
               for b in record["builds"])


def test_nothing_the_demo_started_is_left_running(demo):
    _, _, leftovers = demo
    assert (leftovers["containers"], leftovers["processes"]) == ([], [])


def test_an_interrupted_demo_stops_the_registry_it_started(tmp_path):
    """README: the demo stops what it started on exit, also on Ctrl-C (SIGINT to its
    process group, which a background `docker-registry` ignores, so the trap must stop it)."""
    path = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLOPS_REGISTRY", "MLOPS_PROMETHEUS_URL")}
    env.update(MLOPS_DEMO_DIR=str(path), MLOPS_DEMO_PORT=str(free_port()))
    proc = subprocess.Popen(["bash", "hack/demo.sh"], cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        pidfile = path / "registry" / "pid"
        for _ in range(600):  # setup.sh first: quick on a machine already set up
            if pidfile.exists() and (path / "remote.git").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        pid = int(pidfile.read_text())
        assert str(path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 130, out[-3000:]
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), out[-3000:]
        assert _processes_mentioning(str(path)) == []
        assert _containers(str(path)) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        _stop_registry(path)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_the_demo_never_touches_the_work_tree(demo):
    """README: `make demo` runs in its own directory "and never touches your work tree"."""
    _finished(demo)
    before, after = demo[2]["work tree"]
    assert after == before
