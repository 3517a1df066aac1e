"""The registry behind a FaultProxy, for each way mlops reaches it:

* `client`: mlops's own HTTP client, in `mlops build` finding an image by its
  input hash and adding the version tags to it (no Docker involved);
* `push`: the Docker Engine pushing a freshly built image (`mlops build --force`);
* `promote`: `mlops promote` checking that every digest exists before it commits.

Each with the registry refusing connections, resetting mid-answer, answering
too slowly and answering 503: for a while (retried; the result is checked on
the registry itself, not through the proxy) or for good (exit 1, one line,
nothing changed: work tree, remote, every tag in the registry).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.support.faultproxy import FaultProxy
from tests.support.faultrig import COMPONENT, Rig, error_line, private_tempdir, release_repo
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

FAST = {"MLOPS_REGISTRY_TIMEOUT": "1", "MLOPS_REGISTRY_RETRIES": "4",
        "MLOPS_DOCKER_TIMEOUT": "2"}
FOR_GOOD = {**FAST, "MLOPS_REGISTRY_RETRIES": "2"}
# Docker probes an insecure registry over TLS before plain HTTP, so each push
# attempt opens two connections before it sends anything: two resets make one
# attempt fail, and mlops pushes again. The engine itself shrugs off a 503 on
# those first connections (it falls back from TLS, and its /v2/ ping accepts
# any status), so for `push` the 503 case proves the push survives, not that
# mlops retried. A registry answer's head is ~250 bytes: 100 is mid-answer.
TRANSIENT = {
    "reset": lambda p: p.reset_first(2),
    "reset-mid-transfer": lambda p: p.reset_mid_transfer_first(2, 100),
    "slow": lambda p: p.delay_first(1, 3.0),
    "503": lambda p: p.http_status_first(3, 503),
}
PERSISTENT = {
    "refused": (lambda p: p.down(), ("connection refused",)),
    # An RST that lands before the client has sent its request makes send() fail
    # with ECONNRESET; urllib3 swallows that (the server may have answered
    # already) and the read then meets the closed socket: "remote end closed".
    # Which of the two a client sees depends on timing, not on mlops.
    "reset": (lambda p: p.reset_first(1000), ("connection reset", "remote end closed")),
    "reset-mid-transfer": (lambda p: p.reset_mid_transfer_first(1000, 100), ("connection",)),
    "slow": (lambda p: p.delay(6.0), ("timed out", "no progress")),
    "503": (lambda p: p.http_status_first(1000, 503), ("503", "failed the upload")),
}
PATHS = ("client", "push", "promote")


@pytest.fixture(scope="module")
def gate(registry_server):
    """The registry's proxy, one address for the module: Docker remembers which layers
    a registry (by host:port) has and mounts them instead of uploading them again."""
    with FaultProxy(("127.0.0.1", registry_server.port)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def seed(gate, tmp_path_factory):
    """`serve` built and pushed through the proxy once: (rig, namespace, build.json)."""
    namespace = f"{gate.address}/seed{uuid.uuid4().hex[:8]}"
    rig = Rig(tmp_path_factory.mktemp("registry-seed"), release_repo(namespace))
    out = rig.base / "build.json"
    rig.mlops("build", "--output", str(out))
    return rig, namespace, out


@pytest.fixture
def proxy(gate, tmp_path, monkeypatch):
    """`gate`, passing everything through again after the test."""
    private_tempdir(tmp_path, monkeypatch)
    yield gate
    gate.pass_through()
    gate.up()
    gate.down()  # reset what is still open, e.g. a connection held by a delay
    gate.up()


@dataclass
class Case:
    rig: Rig
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    record: Path | None = None


def prepare(path: str, seed, tmp_path: Path) -> Case:
    """The repository and command line of `path`, ready to run."""
    rig, namespace, build_json = seed
    if path == "promote":  # a fresh remote each time: dev has no release yet
        return Case(Rig(tmp_path, release_repo(namespace)),
                    ("promote", "--to", "dev", "--build", str(build_json)))
    rig.git_commit(f"another commit for {tmp_path.name}")  # so a new version tag is due
    out = tmp_path / "build.json"
    if path == "client":
        return Case(rig, ("build", "--output", str(out)), record=out)
    fresh = f"{namespace}-{uuid.uuid4().hex[:6]}"  # nothing to reuse there: build and push
    return Case(rig, ("build", "--force", "--output", str(out)), {"MLOPS_REGISTRY": fresh}, out)


def run(case: Case, capsys, monkeypatch, env: dict[str, str]):
    return case.rig.project(capsys, monkeypatch).run(*case.args, env={**env, **case.env})


def repository(image: str) -> str:
    return image.split("/", 1)[1]


def check_landed(path: str, case: Case, server) -> None:
    """Ask the registry (not the proxy) and the remote what the command did."""
    if path == "promote":
        assert case.rig.remote_log()[0].startswith("promote(dev): release r-")
        overlay = yaml.safe_load(case.rig.remote_show("environments/dev/kustomization.yaml"))
        (pin,) = overlay["images"]
        assert server.digest(repository(pin["newName"]), pin["digest"]) == pin["digest"]
        return
    assert case.record is not None
    (entry,) = json.loads(case.record.read_text())["builds"]
    assert entry["status"] == ("reused" if path == "client" else "built"), entry
    assert entry["pushed"] is (path == "push")
    for tag in entry["tags"]:
        assert server.digest(repository(entry["image"]), tag) == entry["digest"], tag


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
@pytest.mark.parametrize("path", PATHS)
def test_transient_registry_fault_is_retried(path, fault, proxy, seed, registry_server,
                                             tmp_path, capsys, monkeypatch):
    case = prepare(path, seed, tmp_path)
    before = proxy.faults_injected
    TRANSIENT[fault](proxy)
    result = run(case, capsys, monkeypatch, FAST)
    assert result.code == 0, result.err
    assert proxy.faults_injected > before
    check_landed(path, case, registry_server)


@pytest.mark.parametrize("path", PATHS)
def test_registry_refusing_connections_for_a_while(path, proxy, seed, registry_server,
                                                   tmp_path, capsys, monkeypatch):
    case = prepare(path, seed, tmp_path)
    proxy.down()
    timer = threading.Timer(1.0, proxy.up)
    timer.start()
    try:
        result = run(case, capsys, monkeypatch, {**FAST, "MLOPS_REGISTRY_RETRIES": "8"})
    finally:
        timer.join()
    assert result.code == 0, result.err
    if path == "push":  # the engine's refusal comes back in its stream, and is logged
        assert "connection refused" in result.err, result.err
    check_landed(path, case, registry_server)


@pytest.mark.parametrize("fault", sorted(PERSISTENT))
@pytest.mark.parametrize("path", PATHS)
def test_persistent_registry_fault_fails_cleanly(path, fault, proxy, seed, registry_server,
                                                 tmp_path, capsys, monkeypatch):
    arm, reasons = PERSISTENT[fault]
    case = prepare(path, seed, tmp_path)
    before = Snapshot.take(repo=case.rig.clone, remote=case.rig.remote, registry=registry_server)
    arm(proxy)
    result = run(case, capsys, monkeypatch, FOR_GOOD)
    assert result.code == 1, result.err
    line = error_line(result)
    assert any(reason in line for reason in reasons), line
    if path == "promote":
        assert line.startswith(f"mlops: error: registry {proxy.address} failed after 2 "
                               "attempts: GET /v2/"), line
    else:
        what = "push failed: " if path == "push" else f"registry {proxy.address} failed after 2"
        assert line.startswith(f"mlops: error: 1 of 1 components failed; {COMPONENT}: {what}"), \
            line
        (entry,) = json.loads(case.record.read_text())["builds"]
        assert entry["status"] == "failed" and entry["pushed"] is False, entry
        assert entry["digest"] is None and entry["tags"] == [], entry
    before.assert_same(Snapshot.take(repo=case.rig.clone, remote=case.rig.remote,
                                     registry=registry_server))
