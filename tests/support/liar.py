"""A registry that lies: a loopback reverse proxy in front of the real one.

It forwards every request to the real registry and passes the answer back,
except for manifests it was told to swap: for `/v2/<repo>/manifests/<ref>`
with `ref` in `swap`, it answers with the bytes of another manifest while
keeping the real answer's headers, `Docker-Content-Digest` included. That is
what a compromised or careless registry (or a machine in the middle) can do;
a client that trusts the header instead of hashing the bytes is fooled.
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping

from mlops.adapters.registry import MANIFEST_TYPES


class LyingRegistry:
    def __init__(self, upstream: str, swap: Mapping[str, bytes]) -> None:
        self.upstream = upstream.rstrip("/")  # http://127.0.0.1:PORT
        self.swap = dict(swap)  # reference (tag or digest) -> the bytes served instead
        self.lies = 0
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self._server is not None, "LyingRegistry not started"
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LyingRegistry:
        handler = type("Handler", (_Handler,), {"liar": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    liar: LyingRegistry
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:
        self._forward("GET")

    def do_HEAD(self) -> None:
        self._forward("HEAD")

    def _forward(self, method: str) -> None:
        request = urllib.request.Request(self.liar.upstream + self.path, method=method,
                                         headers={"Accept": MANIFEST_TYPES})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
                status, body, headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, body, headers = exc.code, exc.read(), exc.headers
        reference = self.path.rsplit("/manifests/", 1)[-1] if "/manifests/" in self.path else ""
        if status == 200 and reference in self.liar.swap:
            body = self.liar.swap[reference]
            self.liar.lies += 1
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method == "GET":
            self.wfile.write(body)
