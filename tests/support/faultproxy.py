"""A small TCP proxy for fault-injection tests.

Put a :class:`FaultProxy` in front of a real service (an OCI registry, a git
http remote, Prometheus, the Docker Engine's TCP or unix socket) and tell it to
misbehave, so that the product's retries and error handling meet real network
faults instead of mocks::

    with FaultProxy(("127.0.0.1", registry_port)) as proxy:
        proxy.reset_first(2)             # the next two connections get an RST
        push_image(registry=proxy.address)
        assert proxy.faults_injected == 2

Design
------
* One accept thread per listening period (``start``/``up`` .. ``down``/``stop``)
  and one thread per accepted connection.  Every thread waits in a selector that
  also watches a private wake-up pipe, so nothing polls and every thread can be
  interrupted by ``down()``/``stop()``.
* Pass-through forwarding uses non-blocking sockets with a bounded buffer per
  direction (back-pressure instead of unbounded memory), and propagates
  half-closes: when one side sends EOF, the proxy forwards the remaining bytes
  and then shuts down the write side towards the other peer.  HTTP/1.0-style
  "response ends at EOF", keep-alive connections and long streaming uploads all
  work.  A socket error on either side resets both sides.
* Fault modes are decided when a connection is accepted, so a mode set by a
  test applies to connections accepted after the call.  The count-based modes
  (``reset_first``, ``close_first``, ``http_status_first``,
  ``reset_mid_transfer_first``, ``delay_first``) replace one another; ``delay``
  is independent of them and is only cleared by ``pass_through()``.
* The upstream is ``(host, port)`` or the path of a unix socket (the Docker
  Engine's ``/var/run/docker.sock``): clients always connect over TCP.

Only the standard library is used.  Thread names start with
``faultproxy-<port>-`` so tests can check that ``stop()`` leaves nothing behind.
"""

from __future__ import annotations

import errno
import http
import logging
import os
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass

__all__ = ["FaultProxy"]

log = logging.getLogger(__name__)

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


class FaultProxy:
    """TCP proxy listening on 127.0.0.1 that can inject network faults.

    All fault modes apply to connections accepted after the call.
    """

    def __init__(
        self,
        upstream: tuple[str, int] | str,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        """``upstream`` is ``(host, port)``, or a unix socket path as a string."""
        self.upstream: tuple[str, int] | str = (
            upstream if isinstance(upstream, str) else (upstream[0], int(upstream[1])))
        self._listen_host = listen_host
        self._port = int(listen_port)
        self._lock = threading.Lock()
        # Fault configuration (guarded by _lock).
        self._kind = _PASS
        self._remaining = 0
        self._status = 503
        self._after_bytes = 0
        self._delay = 0.0
        self._slow = 0.0  # delay_first's seconds
        # Counters (guarded by _lock).
        self._connections = 0
        self._faults = 0
        # Runtime state.
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._accept_wake: _WakePipe | None = None
        self._conns: set[_Connection] = set()
        self._started = False
        self._stopped = False
        self._transition = threading.Lock()  # serialises start/stop/up/down

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Bind the listening socket and start accepting; returns ``self``."""
        with self._transition:
            if self._started:
                raise RuntimeError("FaultProxy already started")
            self._started = True
            self._open_listener()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, and join all threads.

        Idempotent.  Threads are daemon threads; joins use a timeout so a stuck
        peer can never hang the test session.
        """
        with self._transition:
            if self._stopped:
                return
            self._stopped = True
            self._close_listener()
            self._abort_connections("close")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FaultProxy has no port before start()")
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def down(self) -> None:
        """Stop listening: new connections get ECONNREFUSED, open ones are reset."""
        with self._transition:
            self._require_running()
            self._close_listener()
            self._abort_connections("reset")

    def up(self) -> None:
        """Listen again on the same port after :meth:`down`."""
        with self._transition:
            self._require_running()
            if self._listener is None:
                self._open_listener()

    # -- fault modes -------------------------------------------------------------

    def pass_through(self) -> None:
        """Forward everything unchanged; also clears :meth:`delay`."""
        with self._lock:
            self._kind, self._remaining, self._delay = _PASS, 0, 0.0

    def reset_first(self, n: int) -> None:
        """The next ``n`` connections are accepted and reset at once (RST)."""
        self._set_fault(_RESET, n)

    def close_first(self, n: int) -> None:
        """The next ``n`` connections are accepted and closed cleanly (EOF)."""
        self._set_fault(_CLOSE, n)

    def http_status_first(self, n: int, status: int = 503) -> None:
        """The next ``n`` connections get ``HTTP/1.1 <status>`` and are closed.

        The request head is read first (unless the first bytes cannot be HTTP,
        like a TLS ClientHello, which is answered at once); the response has
        ``Content-Length: 0`` and ``Connection: close``.  Upstream is never
        contacted.
        """
        if not 100 <= int(status) <= 999:
            raise ValueError(f"invalid HTTP status {status!r}")
        self._set_fault(_HTTP_STATUS, n, status=int(status))

    def reset_mid_transfer_first(self, n: int, after_bytes: int) -> None:
        """The next ``n`` connections are proxied, but reset after ``after_bytes``
        bytes went upstream -> client (counted from the connection start, headers
        included).  The reset happens when more than ``after_bytes`` bytes are
        due; a connection whose traffic never exceeds the limit ends normally
        and is not counted in :attr:`faults_injected`.
        """
        if after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        self._set_fault(_RESET_MID, n, after_bytes=int(after_bytes))

    def delay_first(self, n: int, seconds: float) -> None:
        """The next ``n`` connections are proxied, but hold the first upstream
        response bytes for ``seconds`` (a server that is slow for a while).
        Each counts in :attr:`faults_injected` when it is accepted.
        """
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._set_fault(_SLOW, n, delay=float(seconds))

    def delay(self, seconds: float) -> None:
        """Every new connection holds the first upstream response bytes for
        ``seconds`` before forwarding them (a slow server).  Combines with the
        other modes; cleared by :meth:`pass_through` or ``delay(0)``.
        """
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._delay = float(seconds)

    # -- counters ----------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Total connections accepted since start()."""
        with self._lock:
            return self._connections

    @property
    def faults_injected(self) -> int:
        """How many connections got a fault (delays are not counted)."""
        with self._lock:
            return self._faults

    # -- internals ---------------------------------------------------------------

    def _set_fault(self, kind: str, n: int, *, status: int = 503, after_bytes: int = 0,
                   delay: float = 0.0) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._kind = kind if n else _PASS
            self._remaining = int(n)
            self._status = status
            self._after_bytes = after_bytes
            self._slow = delay

    def _next_plan(self) -> _Plan:
        # Caller holds self._lock.
        if self._kind != _PASS and self._remaining > 0:
            self._remaining -= 1
            delay = max(self._delay, self._slow) if self._kind == _SLOW else self._delay
            plan = _Plan(self._kind, self._status, self._after_bytes, delay)
            if self._remaining == 0:
                self._kind = _PASS
            return plan
        return _Plan(delay=self._delay)

    def _count_fault(self) -> None:
        with self._lock:
            self._faults += 1

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _require_running(self) -> None:
        if not self._started or self._stopped:
            raise RuntimeError("FaultProxy is not running")

    def _open_listener(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._listen_host, self._port))
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._accept_wake = _WakePipe()
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, self._accept_wake),
            name=f"faultproxy-{self._port}-accept",
            daemon=True,
        )
        self._accept_thread.start()

    def _close_listener(self) -> None:
        listener, thread, wake = self._listener, self._accept_thread, self._accept_wake
        self._listener = self._accept_thread = self._accept_wake = None
        if wake is not None:
            wake.signal()
        if thread is not None:
            thread.join(_JOIN_TIMEOUT)
        if listener is not None:
            listener.close()  # queued, never-accepted connections are reset
        if wake is not None:
            wake.close()

    def _abort_connections(self, mode: str) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.abort(mode)
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for conn in conns:
            if conn.thread.ident is not None:  # started (always, unless accept join timed out)
                conn.thread.join(max(0.0, deadline - time.monotonic()))

    def _accept_loop(self, listener: socket.socket, wake: _WakePipe) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            sel.register(wake.r, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    if key.fd == wake.r:
                        return
                    try:
                        client, _addr = listener.accept()
                    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                        continue
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            log.warning("faultproxy accept failed: %s", exc)
                            time.sleep(0.1)  # out of resources: back off instead of spinning
                            continue
                        return  # listener closed
                    self._dispatch(client)

    def _dispatch(self, client: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            number = self._connections
            plan = self._next_plan()
            conn = _Connection(self, client, plan, f"faultproxy-{self._port}-conn-{number}")
            self._conns.add(conn)
        try:
            conn.thread.start()
        except RuntimeError:  # cannot start a thread: fail the connection, not the proxy
            self._forget(conn)
            conn.wake.close()
            _reset(client)
