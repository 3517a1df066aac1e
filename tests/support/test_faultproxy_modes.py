"""FaultProxy's later additions: a unix socket upstream (the Docker Engine's),
`delay_first`, and `http_status_first` answering a TLS probe at once."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from .faultproxy import FaultProxy
from .test_faultproxy import BIG_BODY, _Handler, _Server, request


@pytest.fixture(scope="module")
def upstream():
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="upstream-http-modes", daemon=True)
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


def test_http_status_first_answers_a_tls_hello_at_once(proxy):
    """Docker probes an insecure registry with TLS first: no CRLF ever comes."""
    proxy.http_status_first(1, 503)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
        assert sock.recv(64).startswith(b"HTTP/1.1 503 ")
    assert time.monotonic() - start < 2
    assert proxy.faults_injected == 1


def test_delay_first_slows_only_the_next_connections(proxy):
    # A held response takes at least the delay however fast the machine, so a second
    # connection held too takes >= 1.5 s; one not held has 1 s to spare on a busy one.
    proxy.delay_first(1, 1.5)
    start = time.monotonic()
    assert request(proxy)[2] == b"ok"
    slow = time.monotonic() - start
    start = time.monotonic()
    assert request(proxy)[2] == b"ok"
    fast = time.monotonic() - start
    assert slow >= 1.45 and fast < 1.0
    assert proxy.faults_injected == 1


def test_delay_first_past_a_client_timeout(proxy):
    proxy.delay_first(1, 2.0)
    with pytest.raises(TimeoutError):
        request(proxy, timeout=0.3)
    assert request(proxy, timeout=5)[2] == b"ok"


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _UnixHandler(_Handler):
    def address_string(self) -> str:
        return "unix"


def test_unix_socket_upstream(tmp_path):
    """As in front of the Docker Engine's /var/run/docker.sock: TCP in, unix socket out."""
    path = str(tmp_path / "http.sock")
    server = _UnixServer(path, _UnixHandler)
    thread = threading.Thread(target=server.serve_forever, name="upstream-unix", daemon=True)
    thread.start()
    try:
        with FaultProxy(path) as p:
            assert request(p, "GET", "/big")[2] == BIG_BODY
            assert request(p, "POST", "/echo", body=BIG_BODY)[2] == BIG_BODY
            p.reset_first(1)
            with pytest.raises(ConnectionResetError):
                request(p)
            assert request(p)[2] == b"ok"
            server.shutdown()
            server.server_close()  # nobody listens on the socket: the client sees a reset
            with pytest.raises(ConnectionResetError):
                request(p)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
