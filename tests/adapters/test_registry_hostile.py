"""The registry adapter against a hostile registry (or one it redirects to): credentials stay
with the registry's host and scheme, answers are bounded, odd JSON is one line.

Real HTTP servers on 127.0.0.1 (tests/adapters/test_stdhttp.py's recorders), scripted
to answer as an attacker would.
"""

from __future__ import annotations

import base64
import ssl

import pytest

from mlops.adapters import stdhttp
from mlops.adapters.registry import Credentials, Registry, RetryPolicy
from mlops.errors import RegistryError
from tests.adapters.test_stdhttp import (  # noqa: F401
    Recorder,
    TlsRecorder,
    certificate,
    no_proxy_env,
    reply,
)

pytestmark = pytest.mark.usefixtures("no_proxy_env")
FAST = RetryPolicy(attempts=2, initial=0.01, max_wait=0.05, read_timeout=5)
CREDS = Credentials("ci-bot", "s3cret-Pw9")
BASIC = "Basic " + base64.b64encode(b"ci-bot:s3cret-Pw9").decode()


def _challenge(realm: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer realm="{realm}",service="x",scope="repository:m:pull"'}


def test_a_host_we_are_redirected_to_gets_no_credentials_by_challenging():
    with Recorder(lambda h: reply(h, 401, b"", _challenge(f"{other.base}/token"))) as other:
        with Recorder(lambda h: reply(h, 307, b"", {"Location": f"{other.base}{h.path}"})) \
                as registry:
            client = Registry(f"127.0.0.1:{registry.server_address[1]}", CREDS, policy=FAST)
            with pytest.raises(RegistryError, match="denied"):
                client.manifest_digest("m/x", "latest")
    assert registry.seen[0][3].get("Authorization") == BASIC  # the registry itself: yes
    assert [path for _, _, path, _ in other.seen if path.startswith("/token")] == []
    assert all("Authorization" not in headers for _, _, _, headers in other.seen)


def test_an_https_registry_cannot_send_the_password_to_a_plain_http_realm(
        certificate):  # noqa: F811
    with Recorder(lambda h: reply(h, 200, b'{"token": "t"}')) as realm:
        answer = _challenge(f"{realm.base}/token")
        with TlsRecorder(lambda h: reply(h, 401, b"", answer), certificate) as registry:
            client = Registry(f"127.0.0.1:{registry.server_address[1]}", CREDS, policy=FAST,
                              insecure=False)
            trusted = ssl.create_default_context(cafile=str(certificate[0]))
            client._session._tls = trusted  # trust the throwaway certificate, nothing else
            with pytest.raises(RegistryError, match="not https: mlops sends no credentials"):
                client.manifest_digest("m/x", "latest")
    assert realm.seen == []


def test_an_answer_larger_than_the_limit_is_refused_unread(monkeypatch):
    monkeypatch.setattr(stdhttp, "MAX_BODY", 1 << 16)
    big = b"{" + b" " * (1 << 17) + b"}"
    with Recorder(lambda h: reply(h, 200, big)) as registry:
        client = Registry(f"127.0.0.1:{registry.server_address[1]}", policy=FAST)
        with pytest.raises(RegistryError, match=r"an answer of 131074 bytes \(at most 65536"):
            client.manifest_digest("m/x", "latest")
    assert len(registry.seen) == 1  # refused, not retried


def test_an_answer_without_a_length_is_cut_at_the_limit(monkeypatch):
    monkeypatch.setattr(stdhttp, "MAX_BODY", 1 << 16)

    def endless(handler):
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"x" * (1 << 18))

    with Recorder(endless) as registry:
        client = Registry(f"127.0.0.1:{registry.server_address[1]}", policy=FAST)
        with pytest.raises(RegistryError, match="more than 65536 bytes"):
            client.manifest_digest("m/x", "latest")


@pytest.mark.parametrize("body", [b"[1]", b'{"errors": "x"}', b'{"errors": [3, null]}',
                                  b"[" * 100_000 + b"]" * 100_000])
def test_an_error_body_of_odd_json_is_one_line(body):
    with Recorder(lambda h: reply(h, 400, body, {"Content-Type": "application/json"})) \
            as registry:
        client = Registry(f"127.0.0.1:{registry.server_address[1]}", policy=FAST)
        with pytest.raises(RegistryError, match=r"HTTP 400: Bad Request$"):
            client.manifest_digest("m/x", "latest")


def test_a_token_answer_of_deep_json_is_one_line():
    def answer(h):
        if h.path.startswith("/token"):
            reply(h, 200, b"[" * 100_000 + b"]" * 100_000)
        else:
            reply(h, 401, b"", _challenge(f"http://127.0.0.1:{h.server.server_address[1]}/token"))

    with Recorder(answer) as registry:
        client = Registry(f"127.0.0.1:{registry.server_address[1]}", CREDS, policy=FAST)
        with pytest.raises(RegistryError, match="its token endpoint answered no JSON"):
            client.manifest_digest("m/x", "latest")


def test_an_answer_trickled_a_byte_at_a_time_ends_at_the_deadline(monkeypatch):
    """Each read comes within the read timeout, so only a deadline for the whole answer
    ends it: a hostile registry cannot hold a promotion open for ever."""
    import time

    monkeypatch.setattr(stdhttp, "DEADLINE", 1.0)

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)

    with Recorder(trickle) as registry:
        client = Registry(f"127.0.0.1:{registry.server_address[1]}", policy=FAST)
        start = time.monotonic()
        with pytest.raises(RegistryError, match="no whole answer within 1s"):
            client.manifest_digest("m/x", "latest")
        assert time.monotonic() - start < 5  # two attempts of about a second each
