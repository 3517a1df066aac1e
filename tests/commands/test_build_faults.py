"""`mlops build` when the registry misbehaves: flaky, down, read-only, or with auth.

Each test pushes to a registry endpoint of its own (a proxy's or a server's port), so its
components build FROM scratch (NO_BASE): what is tested is the push, not the base image.
"""

from __future__ import annotations

import base64
import json

import pytest

from mlops.adapters.builder import _push_error
from tests.conftest import NO_BASE, mlops_yaml, tiny_component
from tests.support.faultproxy import FaultProxy
from tests.support.services import RegistryServer

pytestmark = pytest.mark.usefixtures("docker_engine")


def builds(path):
    return {b["component"]: b for b in json.loads(path.read_text())["builds"]}


@pytest.fixture
def flaky(registry):
    server, ns = registry
    with FaultProxy(("127.0.0.1", server.port)) as proxy:
        yield server, proxy, ns.replace(server.host, proxy.address)


@pytest.mark.parametrize("fault", ["reset", "eof", "503"])
def test_flaky_registry_still_gets_the_push_done(project, flaky, tmp_path, fault):
    server, proxy, ns = flaky
    proj = project({"mlops.yaml": mlops_yaml(ns, base=NO_BASE), **tiny_component("one"),
                    **tiny_component("two")})
    {"reset": lambda: proxy.reset_first(3), "eof": lambda: proxy.close_first(3),
     "503": lambda: proxy.http_status_first(3, 503)}[fault]()
    out = tmp_path / "build.json"
    result = proj.run("build", "--output", str(out), env={"MLOPS_REGISTRY_RETRIES": "6"})
    assert result.code == 0, result.err
    assert proxy.faults_injected == 3
    repo_ns = ns.split("/", 1)[1]
    for name, entry in builds(out).items():
        assert entry["pushed"] is True
        # ask the registry itself, not through the proxy
        assert server.digest(f"{repo_ns}/{name}", "0.1.0") == entry["digest"]


def test_registry_refusing_connections_for_a_while(project, flaky, tmp_path):
    import threading

    server, proxy, ns = flaky
    proj = project({"mlops.yaml": mlops_yaml(ns, base=NO_BASE), **tiny_component("one")})
    proxy.down()  # real ECONNREFUSED until the timer brings it back
    timer = threading.Timer(1.0, proxy.up)
    timer.start()
    try:
        result = proj.run("build", "--json", env={"MLOPS_REGISTRY_RETRIES": "8"})
    finally:
        timer.join()
    assert result.code == 0, result.err
    entry = result.json["builds"][0]
    assert server.digest(f"{ns.split('/', 1)[1]}/one", "0.1.0") == entry["digest"]


def test_registry_that_stays_down(project, flaky, tmp_path):
    server, proxy, ns = flaky
    proj = project({"mlops.yaml": mlops_yaml(ns, base=NO_BASE), **tiny_component("one"),
                    **tiny_component("two")})
    proxy.down()
    out = tmp_path / "build.json"
    result = proj.run("build", "--output", str(out), env={"MLOPS_REGISTRY_RETRIES": "2"})
    assert result.code == 1
    assert result.err.strip().splitlines()[-1].startswith(
        "mlops: error: 2 of 2 components failed; one: registry 127.0.0.1:")
    assert "connection refused" in result.err
    for entry in builds(out).values():
        assert entry["status"] == "failed" and entry["pushed"] is False
        assert entry["digest"] is None and entry["tags"] == []
    assert server.tags(f"{ns.split('/', 1)[1]}/one") == []


def test_push_error_reported_in_band_fails_that_component(project, tmp_path):
    server = RegistryServer(tmp_path / "ro", readonly=True)
    (tmp_path / "ro").mkdir()
    server.start()
    try:
        proj = project({"mlops.yaml": mlops_yaml(f"{server.host}/ro", base=NO_BASE),
                        **tiny_component("one")})
        out = tmp_path / "build.json"
        result = proj.run("build", "--output", str(out))
    finally:
        server.stop()
    assert result.code == 1
    assert "one: push failed:" in result.err
    entry = builds(out)["one"]
    assert entry["status"] == "failed" and entry["pushed"] is False and entry["digest"] is None


def test_credentials_come_from_docker_config_and_are_never_printed(
    project, tmp_path, monkeypatch
):
    password = "pl4nted-s3cret"
    (tmp_path / "auth").mkdir()
    server = RegistryServer(tmp_path / "auth", htpasswd=("ci-bot", password)).start()
    try:
        docker_config = tmp_path / "docker-config"
        docker_config.mkdir()
        token = base64.b64encode(f"ci-bot:{password}".encode()).decode()
        (docker_config / "config.json").write_text(
            json.dumps({"auths": {server.host: {"auth": token}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
        proj = project({"mlops.yaml": mlops_yaml(f"{server.host}/auth", base=NO_BASE),
                        **tiny_component("one")})
        out = tmp_path / "build.json"
        result = proj.run("build", "--output", str(out), "--json")
        assert result.code == 0, result.err
        assert builds(out)["one"]["pushed"] is True
        again = proj.run("build", "--json", "-v")
        assert again.code == 0 and again.json["builds"][0]["status"] == "reused"
        monkeypatch.delenv("DOCKER_CONFIG")
        denied = proj.run("build", "--json", "--force")
        assert denied.code == 1
    finally:
        server.stop()
    for text in (result.out, result.err, again.out, again.err, denied.out, denied.err,
                 out.read_text()):
        assert password not in text and token not in text


@pytest.mark.parametrize(("message", "transient"), [
    ("Get http://127.0.0.1:1/v2/: dial tcp 127.0.0.1:1: connect: connection refused", True),
    ("received unexpected HTTP status: 503 Service Unavailable", True),
    ("unexpected EOF", True),
    ("denied: requested access to the resource is denied", False),
    ("unauthorized: authentication required", False),
])
def test_push_errors_are_classified(message, transient):
    assert _push_error(message).transient is transient
