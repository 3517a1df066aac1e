"""`mlops build` when the Docker Engine misbehaves: a FaultProxy between the docker SDK
(DOCKER_HOST=tcp://proxy) and the engine's real unix socket.

Transient faults are retried (connecting, the build, the component's test) and
the image lands in the registry, checked there directly. Persistent faults fail
the component with one line, exit 1, a build record that says so, and nothing
pushed.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading

import pytest

from tests.conftest import mlops_yaml, tiny_component
from tests.support.faultproxy import FaultProxy
from tests.support.faultrig import error_line, private_tempdir
from tests.support.untouched import Snapshot

# serial: "no test container left" is checked on the engine as a whole, where the other
# xdist worker's builds run their own tests (a parallel run saw one: CI, 2026-12-07).
pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.serial]

SOCKET = "/var/run/docker.sock"
# The engine's /version answer is about 1 kB, then the build stream follows on
# the same connection: a reset after 1300 bytes lands inside the build.
IN_BUILD = 1300
# The test prints ~100 kB; the connection has carried < 3 kB before it runs.
IN_TEST_LOGS = 20_000
NOISY_TEST = "[python3, -c, \"for i in range(1500): print('x' * 60)\"]"

# fault -> arm the proxy for a while: the first connections only.
TRANSIENT = {
    "reset": lambda p: p.reset_first(2),
    "reset-mid-build": lambda p: p.reset_mid_transfer_first(1, IN_BUILD),
    # A broken log stream is not retried: mlops waits for the test's exit code
    # on a new connection and shows the lines it missed then.
    "reset-mid-test": lambda p: p.reset_mid_transfer_first(1, IN_TEST_LOGS),
    "slow": lambda p: p.delay_first(1, 3.0),
    "503": lambda p: p.http_status_first(2, 503),
}
# fault -> (arm the proxy for good, what the error line names)
PERSISTENT = {
    "refused": (lambda p: p.down(), "connection refused"),
    "reset": (lambda p: p.reset_first(1000), "connection"),
    # every answer cut off after 400 bytes: the /version body already
    "reset-mid-transfer": (lambda p: p.reset_mid_transfer_first(1000, 400), "connection"),
    "slow": (lambda p: p.delay(10.0), "no answer within the timeout"),
    "503": (lambda p: p.http_status_first(1000, 503), "HTTP 503"),
}
FAST = {"MLOPS_DOCKER_TIMEOUT": "1", "MLOPS_DOCKER_RETRIES": "3"}


@pytest.fixture
def engine():
    with FaultProxy(SOCKET) as proxy:
        yield proxy


@pytest.fixture
def case(project, registry, engine, tmp_path, monkeypatch):
    """A one-component repo (with a noisy test) whose builds reach the engine via the proxy;
    it pushes to the registry directly (pushes after the session's first mount the layers)."""
    private_tempdir(tmp_path, monkeypatch)
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("one", test=NOISY_TEST)})
    env = {**FAST, "DOCKER_HOST": f"tcp://{engine.address}"}
    return proj, server, ns.split("/", 1)[1], env, tmp_path / "build.json"


def leftover_containers() -> list[str]:
    """Test containers mlops made and did not remove (it names them mlops-test-<12 hex>)."""
    proc = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"],
                          capture_output=True, text=True, check=True)
    return [n for n in proc.stdout.split() if re.fullmatch(r"mlops-test-[0-9a-f]{12}", n)]


def record(path):
    (entry,) = json.loads(path.read_text())["builds"]
    return entry


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_transient_engine_fault_is_retried(case, engine, fault):
    proj, server, repo_ns, env, out = case
    TRANSIENT[fault](engine)
    result = proj.run("build", "--output", str(out), env=env)
    assert result.code == 0, result.err
    assert engine.faults_injected >= 1
    if fault != "reset-mid-test":
        assert "retrying" in result.err  # the product saw the fault and tried again
    assert result.err.count("x" * 60) == 1500  # the test ran once, every line shown once
    entry = record(out)
    assert entry["status"] == "built" and entry["pushed"] is True
    assert server.digest(f"{repo_ns}/one", "0.1.0") == entry["digest"]  # the registry itself
    local = subprocess.run(["docker", "image", "inspect", f"{entry['image']}:0.1.0"],
                           capture_output=True)  # the engine itself, not through the proxy
    assert local.returncode == 0, local.stderr
    assert leftover_containers() == []


def test_engine_refusing_connections_for_a_while(case, engine):
    proj, server, repo_ns, env, out = case
    engine.down()
    timer = threading.Timer(1.0, engine.up)
    timer.start()
    try:
        result = proj.run("build", "--output", str(out),
                          env={**env, "MLOPS_DOCKER_RETRIES": "8"})
    finally:
        timer.join()
    assert result.code == 0, result.err
    assert "connection refused" in result.err  # it did meet the refusal
    assert server.digest(f"{repo_ns}/one", "0.1.0") == record(out)["digest"]


@pytest.mark.parametrize("fault", sorted(PERSISTENT))
def test_persistent_engine_fault_fails_cleanly(case, engine, fault):
    proj, server, repo_ns, env, out = case
    arm, reason = PERSISTENT[fault]
    before = Snapshot.take(repo=proj.path, registry=server)
    arm(engine)
    result = proj.run("build", "--output", str(out),
                      env={**env, "MLOPS_DOCKER_RETRIES": "2"})
    assert result.code == 1, result.err
    last = error_line(result)
    assert last.startswith("mlops: error: 1 of 1 components failed; one: Docker Engine at "
                           f"tcp://{engine.address} unavailable after 2 attempt(s): "), last
    assert reason in last, last
    entry = record(out)
    assert entry["status"] == "failed" and entry["pushed"] is False
    assert entry["digest"] is None and entry["tags"] == [] and "Docker Engine" in entry["error"]
    before.assert_same(Snapshot.take(repo=proj.path, registry=server))
    assert server.tags(f"{repo_ns}/one") == []
    assert leftover_containers() == []
