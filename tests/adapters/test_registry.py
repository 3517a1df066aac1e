"""The registry adapter against a real registry, behind a fault-injecting proxy."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops.adapters.registry import Credentials, Registry, RetryPolicy, is_loopback_host
from mlops.errors import RegistryError
from tests.support.faultproxy import FaultProxy

FAST = RetryPolicy(attempts=4, initial=0.01, max_wait=0.05, read_timeout=5)


@pytest.fixture
def proxy(registry_server):
    with FaultProxy(("127.0.0.1", registry_server.port)) as p:
        yield p


def test_missing_manifest_is_none(registry_server):
    client = Registry(registry_server.host, policy=FAST)
    assert client.manifest_digest("nobody/nothing", "latest") is None
    assert client.tags("nobody/nothing") == []


def test_resets_are_retried(proxy):
    proxy.reset_first(2)
    Registry(proxy.address, policy=FAST).ping()
    assert proxy.faults_injected == 2


def test_503_is_retried(proxy):
    proxy.http_status_first(3, 503)
    Registry(proxy.address, policy=FAST).ping()
    assert proxy.faults_injected == 3


def test_429_is_retried(proxy):
    proxy.http_status_first(1, 429)
    assert Registry(proxy.address, policy=FAST).manifest_digest("a/b", "c") is None


def test_persistent_outage_is_a_clear_error(proxy):
    proxy.down()
    with pytest.raises(RegistryError) as err:
        Registry(proxy.address, policy=FAST).ping()
    assert f"registry {proxy.address} failed after 4 attempts" in str(err.value)
    assert "connection refused" in str(err.value)


def test_4xx_fails_at_once(proxy):
    proxy.http_status_first(5, 400)
    with pytest.raises(RegistryError, match="HTTP 400"):
        Registry(proxy.address, policy=FAST).ping()
    assert proxy.connections == 1  # no retry


def test_auth_failure_fails_at_once_and_hides_the_password(proxy):
    proxy.http_status_first(5, 403)
    client = Registry(proxy.address, Credentials("ci-bot", "s3cret-pw"), policy=FAST)
    with pytest.raises(RegistryError) as err:
        client.ping()
    assert "denied GET /v2/ with the configured credentials (HTTP 403)" in str(err.value)
    assert "s3cret-pw" not in str(err.value) and "s3cret-pw" not in repr(client.credentials)
    assert proxy.connections == 1


def test_basic_auth_against_a_real_htpasswd_registry(tmp_path):
    from tests.support.services import RegistryServer

    server = RegistryServer(tmp_path, htpasswd=("ci-bot", "s3cret-pw")).start()
    try:
        with pytest.raises(RegistryError, match="anonymously"):
            Registry(server.host, policy=FAST).ping()
        Registry(server.host, Credentials("ci-bot", "s3cret-pw"), policy=FAST).ping()
        with pytest.raises(RegistryError) as err:
            Registry(server.host, Credentials("ci-bot", "wrong"), policy=FAST).ping()
        assert "wrong" not in str(err.value)
    finally:
        server.stop()


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:5000", True),
    ("registry.example.com", False), ("10.0.0.1:5000", False),
])
def test_plain_http_only_for_loopback(host, loopback):
    assert is_loopback_host(host) is loopback
    assert Registry(host).base.startswith("http://" if loopback else "https://")


def test_a_loopback_registry_is_never_reached_through_a_proxy(registry_server, monkeypatch):
    """The environment's proxy (a FaultProxy that counts connections) is not used for a
    registry on 127.0.0.1; a registry elsewhere would go through it (tests/adapters/
    test_stdhttp.py)."""
    with FaultProxy(("127.0.0.1", registry_server.port)) as counting:
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.setenv(name, f"http://{counting.address}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        client = Registry(registry_server.host, policy=FAST)
        assert client.manifest_digest("nobody/nothing", "latest") is None
        assert counting.connections == 0


class Echoing:
    """A registry (or a proxy in front of one) that refuses with HTTP 400 and an error
    message repeating, bare and over several lines, the password it was sent."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                kind, _, value = auth.partition(" ")
                password = base64.b64decode(value).decode().partition(":")[2] \
                    if kind == "Basic" else value
                body = json.dumps({"errors": [{"code": "UNSUPPORTED", "message":
                                   f"bad request\nfrom a client holding {password}\nbye"}]})
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_error_repeating_the_password_bare_is_one_line_without_it():
    server = Echoing()
    try:
        client = Registry(server.host, Credentials("ci-bot", "pw-Echo9xQ"), policy=FAST)
        with pytest.raises(RegistryError) as err:
            client.ping()
    finally:
        server.close()
    message = err.value.message
    assert "\n" not in message and "pw-Echo9xQ" not in message, message
    assert message.endswith("HTTP 400: UNSUPPORTED: bad request from a client holding *** bye")
