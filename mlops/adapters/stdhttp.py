"""HTTP/1.1 on the standard library: a keep-alive session for the registry adapter.

The registry adapter makes a few kinds of small requests, hundreds of them in a
promotion (one manifest GET per pinned image). requests and urllib3 take
~90 ms to import and ~1 ms of CPU a request; `http.client` does the same work
with neither (benchmarks/README.md, "Promotion"). What this keeps of requests'
behaviour: connections reused per host and thread-safe, `(connect, read)`
timeouts, Basic auth, query parameters, redirects followed for GET and HEAD
without the Authorization header when they leave the host, and, unless
`trust_env` is off, the environment's proxies (`https_proxy`, `no_proxy`) and
CA bundles (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`). Left out: `~/.netrc` and
compressed bodies (it asks for `identity`, so a manifest's bytes are the bytes
hashed).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from mlops import __version__

REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 10
# The most of an answer read into memory: manifests, indexes, tokens and errors are
# kilobytes (the OCI distribution spec asks registries to accept manifests of 4 MiB);
# a server that sends more is refused, not buffered. Blobs are streamed (`stream=True`).
MAX_BODY = 16 << 20
# The longest one answer read into memory may take, headers and body: the read timeout
# bounds each read, so a server sending a byte at a time would otherwise never end.
DEADLINE = 120.0
USER_AGENT = f"mlops/{__version__}"


class HTTPError(Exception):
    """Anything that kept a request from getting a whole answer."""


class Unreachable(HTTPError):
    """Refused, reset, closed or timed out: worth another attempt."""


class Interrupted(HTTPError):
    """The answer's body was cut off half-way."""


class TooLarge(HTTPError):
    """An answer read into memory was larger than MAX_BODY: not worth another attempt."""


# What the socket layer raises when the peer goes away or stalls.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


class Response:
    """Status, headers (case-insensitive) and body of one answer."""

    def __init__(self, raw: http.client.HTTPResponse, release: Any, stream: bool) -> None:
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self._raw = raw
        self._release = release  # hands the connection back (True) or drops it (False)
        self._content: bytes | None = None
        self.url = ""  # where the answer came from, after redirects (set by Session.request)
        if not stream:
            self._content = _read_all(raw, release)

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_content(65536))
        return self._content

    def json(self) -> Any:
        return json.loads(self.content)

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        try:
            while chunk := self._raw.read(chunk_size):
                yield chunk
        except _NETWORK_ERRORS as exc:
            self.close()
            raise Interrupted(_describe(exc)) from None
        if self._raw.length:  # read(n) ends quietly when the peer closes early
            self.close()
            raise Interrupted(f"connection closed mid-answer ({self._raw.length} bytes "
                              "more expected)")
        self._release(not self._raw.will_close)

    def close(self) -> None:
        if self._content is None:
            self._release(False)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Watch:
    """One exchange's deadline: at it, the connection's socket is shut, so that the read
    blocked on it ends (and the answer is reported as not whole)."""

    def __init__(self, conn: http.client.HTTPConnection, at: float) -> None:
        self.conn = conn  # the one in use: a reused connection found closed is replaced
        self.at = at
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        sock = self.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Deadlines:
    """The deadlines of a session's exchanges, kept by one thread (a `threading.Timer` per
    exchange costs ~60 µs of CPU, 12 ms over a promotion's 200 manifest checks)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, _Watch] = {}
        self._thread: threading.Thread | None = None

    def watch(self, conn: http.client.HTTPConnection, seconds: float) -> _Watch:
        watch = _Watch(conn, time.monotonic() + seconds)
        with self._cond:
            self._due[id(watch)] = watch
            if self._thread is None:
                self._thread = threading.Thread(target=self._keep, name="mlops-http-deadlines",
                                                daemon=True)
                self._thread.start()
            elif len(self._due) == 1:
                self._cond.notify()  # it slept with nothing due; later ones are due later
        return watch

    def done(self, watch: _Watch) -> None:
        with self._cond:
            self._due.pop(id(watch), None)

    def _keep(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                expired = [w for w in self._due.values() if w.at <= now]
                for watch in expired:
                    del self._due[id(watch)]
                    watch.fire()
                soonest = min((w.at for w in self._due.values()), default=None)
                self._cond.wait(None if soonest is None else soonest - now)


def _read_all(raw: http.client.HTTPResponse, release: Any) -> bytes:
    if raw.length is not None and raw.length > MAX_BODY:
        release(False)
        raise TooLarge(f"an answer of {raw.length} bytes (at most {MAX_BODY} are read)")
    try:  # with a length, read() itself reports a body cut short; without, stop past the cap
        body = raw.read() if raw.length is not None else raw.read(MAX_BODY + 1)
    except _NETWORK_ERRORS as exc:
        release(False)
        raise Interrupted(_describe(exc)) from None
    if len(body) > MAX_BODY:
        release(False)
        raise TooLarge(f"an answer of more than {MAX_BODY} bytes")
    release(not raw.will_close)
    return body


class Session:
    """Keep-alive connections per (scheme, host), shared by threads."""

    def __init__(self, trust_env: bool = True) -> None:
        self.trust_env = trust_env
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._deadlines = _Deadlines()

    def get(self, url: str, **kw: Any) -> Response:
        return self.request("GET", url, **kw)

    def request(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                headers: Mapping[str, str] | None = None, auth: tuple[str, str] | None = None,
                timeout: float | tuple[float, float] = 30.0, data: bytes | None = None,
                stream: bool = False) -> Response:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
        if auth is not None:
            sent["Authorization"] = _basic(auth)
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send(method, url, sent, data, _timeouts(timeout), stream)
            resp.url = url
            target = resp.headers.get("Location")
            if resp.status_code not in REDIRECTS or method not in ("GET", "HEAD") or not target:
                return resp
            resp.close()
            url, sent = _redirected(url, urljoin(url, target), sent)
        raise HTTPError(f"more than {MAX_REDIRECTS} redirects")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # -- one exchange on a pooled connection ----------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
              timeouts: tuple[float, float], stream: bool) -> Response:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        conn, reused = self._checkout(key, timeouts)
        target = self._request_target(parts, conn)
        if target.startswith("http://"):
            headers = {**headers, **conn.mlops_proxy}  # type: ignore[attr-defined]
        watchdog = None if stream else self._deadlines.watch(conn, DEADLINE)
        try:
            resp = self._exchange(key, conn, reused, method, target, headers, data, timeouts,
                                  stream, watchdog)
        except HTTPError:
            if watchdog is not None and watchdog.fired:
                raise Unreachable(f"no whole answer within {DEADLINE:g}s") from None
            raise
        finally:
            if watchdog is not None:
                self._deadlines.done(watchdog)
        if watchdog is not None and watchdog.fired:  # a body that ends at close, cut short
            raise Unreachable(f"no whole answer within {DEADLINE:g}s")
        return resp

    def _exchange(self, key, conn, reused, method, target, headers, data, timeouts,
                  stream, watchdog: _Watch | None) -> Response:
        try:
            try:
                conn.request(method, target, body=data, headers=headers)
                raw = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # The server closed an idle connection as we reused it: once more, fresh.
                conn.close()
                conn = self._connect(key, timeouts)
                if watchdog is not None:
                    watchdog.conn = conn
                conn.request(method, target, body=data, headers=headers)
                raw = conn.getresponse()
        except _NETWORK_ERRORS as exc:
            conn.close()
            raise Unreachable(_describe(exc)) from None
        return Response(raw, self._releaser(key, conn), stream)

    def _releaser(self, key: tuple[str, str], conn: http.client.HTTPConnection) -> Any:
        done = False

        def release(reusable: bool) -> None:
            nonlocal done
            if done:
                return
            done = True
            if not reusable:
                conn.close()
                return
            with self._lock:
                self._idle.setdefault(key, []).append(conn)

        return release

    def _checkout(self, key: tuple[str, str],
                  timeouts: tuple[float, float]) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(key, timeouts), False
            if _still_open(conn):
                if conn.sock is not None:
                    conn.sock.settimeout(timeouts[1])
                return conn, True
            conn.close()

    def _connect(self, key: tuple[str, str],
                 timeouts: tuple[float, float]) -> http.client.HTTPConnection:
        scheme, netloc = key
        proxy = self._proxy_for(scheme, netloc)
        # The proxy's own address: its URL's user:password@ is a header, not a host.
        host, port = (proxy.hostname, proxy.port) if proxy else (netloc, None)
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeouts[0],
                                               context=self._tls_context())
            if proxy:
                conn.set_tunnel(netloc, headers=_proxy_auth(proxy))
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeouts[0])
        # A plain-HTTP proxy takes each request whole, with its credentials.
        conn.mlops_proxy = _proxy_auth(proxy) if proxy else None  # type: ignore[attr-defined]
        try:
            conn.connect()
        except _NETWORK_ERRORS as exc:
            conn.close()
            raise Unreachable(_describe(exc)) from None
        assert conn.sock is not None
        conn.sock.settimeout(timeouts[1])
        return conn

    @staticmethod
    def _request_target(parts: Any, conn: http.client.HTTPConnection) -> str:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if getattr(conn, "mlops_proxy", None) is not None and parts.scheme == "http":
            return f"http://{parts.netloc}{path}"  # a plain-HTTP proxy takes the whole URL
        return path

    def _proxy_for(self, scheme: str, netloc: str) -> Any:
        if not self.trust_env:
            return None
        import urllib.request

        url = urllib.request.getproxies().get(scheme)
        # As requests and Docker read no_proxy, an entry matches the host alone or the host
        # with this port: the environment's reader tries both for host:port; the system
        # settings' (macOS, Windows) match the string whole, so the host goes in alone too.
        host = urlsplit(f"//{netloc}").hostname or netloc
        if not url or urllib.request.proxy_bypass(netloc) or urllib.request.proxy_bypass(host):
            return None
        return urlsplit(url if "://" in url else f"http://{url}")

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._tls is None:
                self._tls = _tls_context(self.trust_env)
            return self._tls


def _tls_context(trust_env: bool) -> ssl.SSLContext:
    """The system's CAs, a bundle named like requests names it, or certifi's when the system
    has none (a slim image)."""
    bundle = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
              if trust_env else None)
    context = ssl.create_default_context(cafile=bundle or None)
    if not bundle and not context.get_ca_certs() and not context.cert_store_stats()["x509_ca"]:
        try:
            import certifi
        except ImportError:
            return context
        context.load_verify_locations(certifi.where())
    return context


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """An idle connection the server has not closed: nothing to read on it yet."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _timeouts(timeout: float | tuple[float, float]) -> tuple[float, float]:
    return timeout if isinstance(timeout, tuple) else (timeout, timeout)


def _basic(auth: tuple[str, str]) -> str:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
    return f"Basic {token}"


def _proxy_auth(proxy: Any) -> dict[str, str]:
    if proxy.username is None:
        return {}
    from urllib.parse import unquote

    return {"Proxy-Authorization": _basic((unquote(proxy.username),
                                           unquote(proxy.password or "")))}


def _redirected(old: str, new: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The next hop; credentials stay with the host they were meant for (as requests does)."""
    before, after = urlsplit(old), urlsplit(new)
    if after.netloc != before.netloc or (before.scheme, after.scheme) == ("https", "http"):
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return new, headers


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return (f"connection closed mid-answer ({len(exc.partial)} bytes read, "
                f"{exc.expected} more expected)")
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
