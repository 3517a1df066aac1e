"""The connection half of :mod:`tests.support.faultproxy`.

One accepted client connection per :class:`_Connection`, with the fault plan
it was given at accept time, the socket helpers that inject resets and
half-closes, and the wake-up pipe that lets ``FaultProxy.down()`` interrupt a
thread waiting in its selector.  Kept apart from the listener so each file
reads as one responsibility; ``FaultProxy`` is the only public name.
"""

from __future__ import annotations

import http
import logging
import os
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.faultproxy import FaultProxy

log = logging.getLogger("tests.support.faultproxy")
_CHUNK = 64 * 1024  # bytes per recv()
_MAX_BUFFER = 256 * 1024  # stop reading a side while this much is waiting to be written
_CONNECT_TIMEOUT = 10.0  # seconds to connect upstream
_HEAD_TIMEOUT = 10.0  # seconds to wait for a request head (http_status mode)
_HEAD_LIMIT = 64 * 1024  # give up collecting a request head after this many bytes
_DRAIN_IDLE = 1.0  # seconds of client silence after which draining stops
_DRAIN_TOTAL = 10.0  # hard limit on draining a client before closing
_JOIN_TIMEOUT = 5.0  # per-thread join timeout in down()/stop()

# Fault kinds.
_PASS = "pass"
_RESET = "reset"
_CLOSE = "close"
_HTTP_STATUS = "http_status"
_RESET_MID = "reset_mid_transfer"
_SLOW = "slow"


@dataclass(frozen=True)
class _Plan:
    """What to do with one accepted connection (fixed at accept time)."""

    kind: str = _PASS
    status: int = 503
    after_bytes: int = 0
    delay: float = 0.0


class _Aborted(Exception):
    """Raised inside a connection thread when down()/stop() interrupts it."""


def _set_rst_on_close(sock: socket.socket) -> None:
    """Make close() send an RST instead of a FIN (SO_LINGER on, timeout 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


def _reset(sock: socket.socket | None) -> None:
    """Close ``sock`` abortively: the peer gets ECONNRESET."""
    if sock is None:
        return
    _set_rst_on_close(sock)
    try:
        sock.close()
    except OSError:
        pass


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


def _shutdown_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Injected Fault"


class _WakePipe:
    """A pipe used to interrupt a selector wait from another thread.

    ``signal()`` and ``close()`` are serialised so that a late signal never
    writes into a file descriptor number that has since been reused.
    """

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)
        self._lock = threading.Lock()
        self._closed = False

    def signal(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self.w, b"x")
            except (BlockingIOError, OSError):
                pass  # pipe full: a wake-up is already pending

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self.r, self.w):
                try:
                    os.close(fd)
                except OSError:
                    pass


class _Connection:
    """One accepted client connection, handled by its own thread."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, plan: _Plan, name: str) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.plan = plan
        self.wake = _WakePipe()
        self.abort_mode: str | None = None  # None, "close" or "reset"
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- control from other threads ------------------------------------------------

    def abort(self, mode: str) -> None:
        """Ask the connection thread to finish: ``"reset"`` (RST) or ``"close"``."""
        if self.abort_mode != "reset":
            self.abort_mode = mode
        self.wake.signal()

    # -- connection thread -----------------------------------------------------------

    def _run(self) -> None:
        rst = False
        try:
            self.client.setblocking(False)
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            kind = self.plan.kind
            if kind == _RESET:
                self.proxy._count_fault()
                rst = True
            elif kind == _CLOSE:
                self.proxy._count_fault()
                self._close_cleanly()
            elif kind == _HTTP_STATUS:
                self._answer_status()
            else:
                if kind == _SLOW:
                    self.proxy._count_fault()
                rst = self._forward()
        except _Aborted:
            rst = self.abort_mode == "reset"
        except OSError as exc:
            log.debug("faultproxy connection error: %s", exc)
            rst = True
        except Exception:  # pragma: no cover - never let a test utility die silently
            log.exception("faultproxy connection handler crashed")
            rst = True
        finally:
            if rst:
                _reset(self.client)
                _reset(self.upstream)
            else:
                _close(self.client)
                _close(self.upstream)
            self.wake.close()
            self.proxy._forget(self)

    def _wait(self, sock: socket.socket, events: int, timeout: float | None) -> bool:
        """Wait until ``sock`` is ready; False on timeout, _Aborted on wake-up."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.wake.r, selectors.EVENT_READ)
            sel.register(sock, events)
            ready = sel.select(timeout)
        if self.abort_mode is not None or any(key.fd == self.wake.r for key, _ in ready):
            raise _Aborted()
        return bool(ready)

    def _send_all(self, sock: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = sock.send(view)
            except (BlockingIOError, InterruptedError):
                self._wait(sock, selectors.EVENT_WRITE, None)
                continue
            view = view[n:]

    def _drain(self) -> None:
        """Read and discard client data until EOF or the client goes quiet.

        Closing a socket that still has unread input makes the kernel send an
        RST instead of a FIN, which would turn an intended clean close (or an
        HTTP error response) into a connection reset on the client side.
        """
        deadline = time.monotonic() + _DRAIN_TOTAL
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if not self._wait(self.client, selectors.EVENT_READ, min(_DRAIN_IDLE, remaining)):
                return
            try:
                if not self.client.recv(_CHUNK):
                    return
            except (BlockingIOError, InterruptedError):
                continue

    def _close_cleanly(self) -> None:
        _shutdown_write(self.client)  # the client reads EOF
        self._drain()

    def _answer_status(self) -> None:
        head = bytearray()
        deadline = time.monotonic() + _HEAD_TIMEOUT
        while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._wait(self.client, selectors.EVENT_READ, remaining):
                break
            try:
                data = self.client.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                break
            head += data
            if not head[:1].isalpha():
                break  # not HTTP (e.g. a TLS ClientHello): answer at once, as a server would
        status = self.plan.status
        response = (
            f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        self.proxy._count_fault()
        self._send_all(self.client, response)
        self._close_cleanly()

    def _connect_upstream(self) -> socket.socket:
        target = self.proxy.upstream
        if isinstance(target, str):  # a unix socket path
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.settimeout(_CONNECT_TIMEOUT)
                upstream.connect(target)
            except OSError:
                upstream.close()
                raise
        else:
            upstream = socket.create_connection(target, timeout=_CONNECT_TIMEOUT)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.setblocking(False)
        return upstream

    def _forward(self) -> bool:
        """Proxy both directions until both are finished.

        Returns True if the connection must end with an RST.
        """
        try:
            self.upstream = self._connect_upstream()
        except OSError as exc:
            log.debug("faultproxy cannot reach upstream %s: %s", self.proxy.upstream, exc)
            return True  # the client sees a reset, like a dead backend behind a proxy
        if self.abort_mode is not None:
            raise _Aborted()

        client, upstream = self.client, self.upstream
        plan = self.plan
        limit = plan.after_bytes if plan.kind == _RESET_MID else None

        to_upstream = bytearray()
        to_client = bytearray()
        client_eof = upstream_eof = False  # EOF read from that side
        upstream_shut = client_shut = False  # write side towards that peer shut down
        sent_to_client = 0
        release_at: float | None = None  # when delayed upstream bytes may flow
        released = plan.delay <= 0

        with selectors.DefaultSelector() as sel:
            sel.register(self.wake.r, selectors.EVENT_READ)
            registered: dict[socket.socket, int] = {}

            def want(sock: socket.socket, events: int) -> None:
                current = registered.get(sock, 0)
                if events == current:
                    return
                if not events:
                    sel.unregister(sock)
                    del registered[sock]
                elif not current:
                    sel.register(sock, events)
                    registered[sock] = events
                else:
                    sel.modify(sock, events)
                    registered[sock] = events

            while not (upstream_shut and client_shut):
                # Fault: reset once `limit` bytes went upstream -> client and more are due.
                if limit is not None and to_client and sent_to_client >= limit:
                    self.proxy._count_fault()
                    return True

                if not released and to_client and release_at is None:
                    release_at = time.monotonic() + plan.delay
                if not released and release_at is not None and time.monotonic() >= release_at:
                    released = True

                client_events = 0
                if not client_eof and len(to_upstream) < _MAX_BUFFER:
                    client_events |= selectors.EVENT_READ
                if to_client and released:
                    client_events |= selectors.EVENT_WRITE
                upstream_events = 0
                if not upstream_eof and len(to_client) < _MAX_BUFFER:
                    upstream_events |= selectors.EVENT_READ
                if to_upstream:
                    upstream_events |= selectors.EVENT_WRITE
                want(client, client_events)
                want(upstream, upstream_events)

                timeout = None
                if not released and release_at is not None:
                    timeout = max(0.0, release_at - time.monotonic())

                for key, mask in sel.select(timeout):
                    sock = key.fileobj
                    if key.fd == self.wake.r:
                        raise _Aborted()
                    if sock is client:
                        if mask & selectors.EVENT_WRITE:
                            chunk = to_client
                            if limit is not None:
                                chunk = to_client[: limit - sent_to_client]
                            n = self._send_some(client, chunk)
                            del to_client[:n]
                            sent_to_client += n
                        if mask & selectors.EVENT_READ:
                            data = self._recv_some(client)
                            if data == b"":
                                client_eof = True
                            elif data:
                                to_upstream += data
                    elif sock is upstream:
                        if mask & selectors.EVENT_WRITE:
                            n = self._send_some(upstream, to_upstream)
                            del to_upstream[:n]
                        if mask & selectors.EVENT_READ:
                            data = self._recv_some(upstream)
                            if data == b"":
                                upstream_eof = True
                            elif data:
                                to_client += data

                # Propagate half-closes once everything before the EOF is delivered.
                if client_eof and not to_upstream and not upstream_shut:
                    upstream.shutdown(socket.SHUT_WR)
                    upstream_shut = True
                if upstream_eof and not to_client and not client_shut:
                    client.shutdown(socket.SHUT_WR)
                    client_shut = True
        return False

    @staticmethod
    def _recv_some(sock: socket.socket) -> bytes | None:
        """recv() on a non-blocking socket; None if nothing was available."""
        try:
            return sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return None

    @staticmethod
    def _send_some(sock: socket.socket, data: bytes | bytearray) -> int:
        if not data:
            return 0
        try:
            return sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
