"""Tests for the fault-injection TCP proxy, against a real local HTTP server."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from .faultproxy import FaultProxy

MIB = 1024 * 1024
BIG_BODY = bytes(range(256)) * (MIB // 256)  # 1 MiB, position-dependent content
STREAM_BODY = bytes(reversed(range(256))) * (2 * MIB // 256)  # 2 MiB, sent until EOF


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def _reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/big":
            self._reply(BIG_BODY)
        elif self.path == "/small":
            self._reply(b"ok")
        elif self.path == "/stream":
            # HTTP/1.0 style: no Content-Length, the body ends when the server closes.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for offset in range(0, len(STREAM_BODY), 64 * 1024):
                self.wfile.write(STREAM_BODY[offset : offset + 64 * 1024])
            self.close_connection = True
        else:
            self._reply(b"not found", status=404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self._reply(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # resets injected by the proxy are expected; keep the output clean


@pytest.fixture(scope="module")
def upstream():
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="upstream-http",
        daemon=True,
    )
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def proxy(upstream):
    with FaultProxy(upstream) as p:
        yield p


def request(proxy, method="GET", path="/small", body=None, timeout=10.0):
    """One request on a fresh connection; returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def assert_reset(excinfo):
    """A real RST, not an EOF (http.client's RemoteDisconnected subclasses
    ConnectionResetError, so it has to be excluded explicitly)."""
    assert isinstance(excinfo.value, ConnectionResetError), repr(excinfo.value)
    assert not isinstance(excinfo.value, http.client.RemoteDisconnected), repr(excinfo.value)


def proxy_threads(port):
    return [t for t in threading.enumerate() if t.name.startswith(f"faultproxy-{port}-")]


# -- pass-through -------------------------------------------------------------------


def test_pass_through_large_get(proxy):
    status, _, body = request(proxy, "GET", "/big")
    assert status == 200
    assert body == BIG_BODY
    assert proxy.connections == 1
    assert proxy.faults_injected == 0


def test_pass_through_large_post(proxy):
    payload = bytes(range(251)) * (5 * MIB // 251)  # ~5 MiB, not aligned to buffer sizes
    status, _, body = request(proxy, "POST", "/echo", body=payload)
    assert status == 200
    assert len(body) == len(payload)
    assert body == payload


def test_pass_through_with_urllib(proxy):
    with urllib.request.urlopen(f"http://{proxy.address}/big", timeout=10) as resp:
        assert resp.status == 200
        assert resp.read() == BIG_BODY


def test_keep_alive_reuses_one_connection(proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        for _ in range(5):
            conn.request("GET", "/small")
            resp = conn.getresponse()
            assert resp.read() == b"ok"
        conn.request("POST", "/echo", body=BIG_BODY)
        assert conn.getresponse().read() == BIG_BODY
    finally:
        conn.close()
    assert proxy.connections == 1


def test_half_close_request_and_read_until_eof(proxy):
    """HTTP/1.0 style: the client half-closes after its request, and the
    response body is delimited by the server closing the connection."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    assert body == STREAM_BODY


def test_server_close_reaches_client_that_keeps_writing_side_open(proxy):
    """The response ends when the upstream closes; the client never half-closes,
    so the proxy itself must pass the upstream EOF on to the client."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        chunks = []
        while True:
            data = sock.recv(65536)  # socket.timeout here means the EOF never came
            if not data:
                break
            chunks.append(data)
    _, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert body == STREAM_BODY


def test_client_half_close_reaches_upstream():
    """Raw TCP: the upstream answers only after reading EOF, so the proxy must
    pass the client's half-close on (as hijacked Docker streams need)."""
    listener = socket.create_server(("127.0.0.1", 0))
    payload = bytes(range(256)) * (3 * MIB // 256)

    def serve_one():
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            received = bytearray()
            while data := conn.recv(65536):
                received += data
            conn.sendall(b"%d:" % len(received) + received[:1024])

    server = threading.Thread(target=serve_one, name="upstream-raw", daemon=True)
    server.start()
    try:
        with FaultProxy(listener.getsockname()[:2]) as p:
            with socket.create_connection(("127.0.0.1", p.port), timeout=5) as sock:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                reply = bytearray()
                while data := sock.recv(65536):
                    reply += data
        assert bytes(reply) == b"%d:" % len(payload) + payload[:1024]
    finally:
        server.join(5)
        listener.close()


def test_many_concurrent_connections(proxy):
    payload = b"p" * (256 * 1024)

    def work(i):
        if i % 2:
            return request(proxy, "GET", "/big")[2] == BIG_BODY
        return request(proxy, "POST", "/echo", body=payload)[2] == payload

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(32)))
    assert all(results)
    assert proxy.connections == 32
    assert proxy.faults_injected == 0


# -- faults -------------------------------------------------------------------------


def test_reset_first(proxy):
    proxy.reset_first(2)
    for _ in range(2):
        with pytest.raises(ConnectionResetError) as excinfo:
            request(proxy)
        assert_reset(excinfo)
    assert request(proxy)[2] == b"ok"
    assert proxy.connections == 3
    assert proxy.faults_injected == 2


def test_reset_first_is_a_reset_even_for_a_silent_client(proxy):
    """A client that sends nothing must still see an RST, not an EOF."""
    proxy.reset_first(1)
    # Under load the RST can already be there when connect() returns.
    with pytest.raises(ConnectionResetError):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.recv(1)  # b"" (a clean EOF) would fail the test
    assert proxy.faults_injected == 1


def test_reset_first_through_urllib(proxy):
    proxy.reset_first(1)
    # urllib wraps errors raised while sending the request in URLError, but
    # lets errors raised while reading the response through unwrapped.
    with pytest.raises((urllib.error.URLError, ConnectionResetError)) as excinfo:
        urllib.request.urlopen(f"http://{proxy.address}/small", timeout=10)
    reason = getattr(excinfo.value, "reason", excinfo.value)
    assert isinstance(reason, ConnectionResetError), repr(reason)
    assert not isinstance(reason, http.client.RemoteDisconnected), repr(reason)
    with urllib.request.urlopen(f"http://{proxy.address}/small", timeout=10) as resp:
        assert resp.read() == b"ok"


def test_close_first(proxy):
    proxy.close_first(2)
    for _ in range(2):
        # A clean close before any response: http.client sees EOF.
        with pytest.raises(http.client.RemoteDisconnected):
            request(proxy)
    assert request(proxy)[2] == b"ok"
    assert proxy.connections == 3
    assert proxy.faults_injected == 2


def test_http_status_first(proxy):
    proxy.http_status_first(2, 503)
    status, headers, body = request(proxy, "GET", "/small")
    assert status == 503
    assert body == b""
    assert headers["Content-Length"] == "0"
    assert headers["Connection"].lower() == "close"
    # A large request body must not turn the 503 into a reset.
    status, _, body = request(proxy, "POST", "/echo", body=BIG_BODY)
    assert status == 503
    status, _, body = request(proxy, "GET", "/small")
    assert (status, body) == (200, b"ok")
    assert proxy.connections == 3
    assert proxy.faults_injected == 2


def test_http_status_first_other_status(proxy):
    proxy.http_status_first(1, 429)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"http://{proxy.address}/small", timeout=10)
    assert excinfo.value.code == 429
    assert excinfo.value.reason == "Too Many Requests"


def test_reset_mid_transfer_first(proxy):
    after = 64 * 1024
    proxy.reset_mid_transfer_first(1, after_bytes=after)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    received = 0
    try:
        conn.request("GET", "/big")
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(ConnectionResetError) as excinfo:
            while True:
                chunk = resp.read(8192)
                if not chunk:
                    break
                received += len(chunk)
        assert_reset(excinfo)
    finally:
        conn.close()
    assert 0 < received < after  # a partial body: the headers count towards `after`
    assert proxy.faults_injected == 1
    # Later connections pass unharmed.
    assert request(proxy, "GET", "/big")[2] == BIG_BODY
    assert proxy.faults_injected == 1
    assert proxy.connections == 2


def test_delay(proxy):
    proxy.delay(0.5)
    start = time.monotonic()
    status, _, body = request(proxy)
    elapsed = time.monotonic() - start
    assert (status, body) == (200, b"ok")
    assert elapsed >= 0.45
    assert proxy.faults_injected == 0


def test_down_refuses_and_up_restores_same_port(proxy):
    port = proxy.port
    # A connection the proxy closes first leaves a TIME_WAIT socket on the port,
    # so up() has to rebind with SO_REUSEADDR.
    proxy.close_first(1)
    with pytest.raises(http.client.RemoteDisconnected):
        request(proxy)
    keep_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        keep_alive.request("GET", "/small")
        assert keep_alive.getresponse().read() == b"ok"

        proxy.down()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(ConnectionRefusedError):
            request(proxy)
        # The already open connection was reset, not closed cleanly.
        with pytest.raises(ConnectionResetError) as excinfo:
            keep_alive.request("GET", "/small")
            keep_alive.getresponse().read()
        assert_reset(excinfo)
    finally:
        keep_alive.close()

    proxy.up()
    assert proxy.port == port
    assert proxy.address == f"127.0.0.1:{port}"
    assert request(proxy)[2] == b"ok"


def test_stop_leaves_no_threads(upstream):
    p = FaultProxy(upstream).start()
    port = p.port
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        idle.request("GET", "/small")
        assert idle.getresponse().read() == b"ok"
        # An accept thread plus the handler of the idle keep-alive connection.
        names = {t.name for t in proxy_threads(port)}
        assert f"faultproxy-{port}-accept" in names
        assert any("-conn-" in name for name in names)

        p.stop()
        assert proxy_threads(port) == []
        p.stop()  # idempotent
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        idle.close()
        p.stop()


def test_pass_through_clears_faults(proxy):
    proxy.reset_first(5)
    proxy.delay(0.3)
    proxy.pass_through()
    assert request(proxy)[2] == b"ok"
    assert proxy.faults_injected == 0
    # No upper-bound timing assertion: check the delay setting itself was cleared.
    assert proxy._delay == 0.0
