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
import logging
import selectors
import socket
import threading
import time

from tests.support.faultconn import (
    _CLOSE,
    _HTTP_STATUS,
    _JOIN_TIMEOUT,
    _PASS,
    _RESET,
    _RESET_MID,
    _SLOW,
    _Connection,
    _Plan,
    _reset,
    _WakePipe,
)

__all__ = ["FaultProxy"]

log = logging.getLogger(__name__)


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
