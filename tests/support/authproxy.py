"""A loopback reverse proxy that demands credentials, as a Prometheus behind auth does.

Real Prometheus checks no bearer token, so tests put this in front of it::

    with AuthProxy(prometheus.url, {f"Bearer {token}"}) as proxy:
        ...query proxy.url...
    assert proxy.seen_authorized

A GET whose `Authorization` header is one of `accepted` is forwarded to the
upstream and its answer passed back; any other request gets 401 with
`WWW-Authenticate` and is never forwarded. `requests` records, for each
request, whether its credentials were accepted (never the header itself).
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable


class AuthProxy:
    def __init__(self, upstream: str, accepted: Iterable[str]) -> None:
        self.upstream = upstream.rstrip("/")
        self.accepted = frozenset(accepted)
        self.requests: list[bool] = []  # per request: were its credentials accepted?
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "AuthProxy not started"
        return int(self._server.server_address[1])

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    @property
    def seen_authorized(self) -> int:
        with self._lock:
            return sum(self.requests)

    @property
    def seen_refused(self) -> int:
        with self._lock:
            return len(self.requests) - sum(self.requests)

    def start(self) -> AuthProxy:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"authproxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> AuthProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, accepted: bool) -> None:
        with self._lock:
            self.requests.append(accepted)


class _Handler(http.server.BaseHTTPRequestHandler):
    proxy: AuthProxy
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:
        accepted = self.headers.get("Authorization", "") in self.proxy.accepted
        self.proxy._record(accepted)
        if not accepted:
            self._answer(401, b"Unauthorized\n", "text/plain",
                         [("WWW-Authenticate", 'Bearer realm="prometheus"')])
            return
        try:
            with urllib.request.urlopen(self.proxy.upstream + self.path, timeout=10) as resp:
                status, body, kind = resp.status, resp.read(), resp.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            status, body, kind = exc.code, exc.read(), exc.headers.get_content_type()
        self._answer(status, body, kind)

    def _answer(self, status: int, body: bytes, kind: str,
                headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
