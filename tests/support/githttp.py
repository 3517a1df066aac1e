"""A smart-HTTP git server on loopback, for tests: the real `git http-backend` CGI.

Serves every bare repository under `root` at `http://127.0.0.1:PORT/<name>.git`,
clones, fetches and pushes included, the way a real git host would::

    with GitHttpServer(tmp_path, auth=("ci", "s3cret")) as server:
        url = server.url("remote.git", auth=True)   # http://ci:s3cret@127.0.0.1:PORT/remote.git
        subprocess.run(["git", "clone", url, "work"], check=True)

Each request runs `git http-backend` once (a list argv, never a shell), with
the CGI variables it reads; `http.receivepack` is on so pushes work. Gzip
request bodies are passed through as they are (the backend inflates them) and
chunked request bodies are de-chunked first. With `auth`, a request without
the right HTTP basic credentials gets 401 and `WWW-Authenticate`, as a git host
answers, so a token in the remote URL is really needed and really sent.

Tests can watch and steer traffic: `requests` logs every request, and
`on_request(info)` runs for every request once the credentials are checked
(`info.status` is 401 for a refused one, else None and `info.user` is set), and
`before_response(info)` after the backend ran (it has done its work, e.g. a push
has landed, but the client has not seen the answer yet). Put `tests.support.faultproxy.FaultProxy` in front of
the port to inject network faults.

By default every response closes its connection (HTTP/1.0), so one request is
one TCP connection and "the next N connections" in a fault proxy means "the
next N requests"; `keep_alive=True` speaks HTTP/1.1 with persistent connections.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import http.server
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GitHttpServer", "RequestInfo"]

_BACKEND_TIMEOUT = 60.0  # seconds one http-backend run may take
_SOCKET_TIMEOUT = 30.0  # seconds a client may stay silent mid-request


@dataclass
class RequestInfo:
    method: str
    path: str  # PATH_INFO, e.g. /remote.git/info/refs
    query: str
    user: str | None = None
    status: int | None = None  # set once the backend answered
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def service(self) -> str | None:
        """git-upload-pack (clone/fetch) or git-receive-pack (push), if the request names one."""
        if self.path.endswith(("/git-upload-pack", "/git-receive-pack")):
            return self.path.rsplit("/", 1)[1]
        for key, value in urllib.parse.parse_qsl(self.query):
            if key == "service":
                return value
        return None


Hook = Callable[[RequestInfo], None]


class GitHttpServer:
    """`start()` / `stop()` (or `with`); `url(repo)`; `requests`, `on_request`, `before_response`."""

    def __init__(self, root: Path, auth: tuple[str, str] | None = None,
                 keep_alive: bool = False) -> None:
        self.root = Path(root).resolve()
        self.auth = auth
        self.keep_alive = keep_alive
        self.requests: list[RequestInfo] = []
        self.on_request: Hook | None = None
        self.before_response: Hook | None = None
        self._git = _git_binary()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> GitHttpServer:
        if self._server is not None:
            raise RuntimeError("GitHttpServer already started")
        handler = type("Handler", (_Handler,), {
            "git": self,
            "protocol_version": "HTTP/1.1" if self.keep_alive else "HTTP/1.0",
        })
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"githttp-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(10)

    def __enter__(self) -> GitHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("GitHttpServer has no port before start()")
        return int(self._server.server_address[1])

    def url(self, repo: str, auth: bool = False, port: int | None = None) -> str:
        """The repository's URL (through `port`, e.g. a fault proxy's, when given)."""
        userinfo = ""
        if auth and self.auth is not None:
            user, password = (urllib.parse.quote(part, safe="") for part in self.auth)
            userinfo = f"{user}:{password}@"
        return f"http://{userinfo}127.0.0.1:{port or self.port}/{repo}"

    # -- used by the handler --------------------------------------------------

    def record(self, info: RequestInfo) -> None:
        with self._lock:
            self.requests.append(info)

    def pushes(self) -> list[RequestInfo]:
        """receive-pack POSTs the backend answered (each a push that reached the repo)."""
        with self._lock:
            return [r for r in self.requests
                    if r.method == "POST" and r.service == "git-receive-pack"]

    def authorized(self, header: str | None) -> tuple[bool, str | None]:
        """(allowed, user) for an Authorization header."""
        if self.auth is None:
            return True, None
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False, None
        ok = hmac.compare_digest(user.encode(), self.auth[0].encode())
        ok &= hmac.compare_digest(password.encode(), self.auth[1].encode())
        return ok, user if ok else None

    def run_backend(self, info: RequestInfo, headers, body: bytes) -> bytes:
        """The CGI's whole output (headers and body) for one request."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": info.method,
            "PATH_INFO": info.path,
            "QUERY_STRING": info.query,
            "CONTENT_TYPE": headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": info.user or "",
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        for header in ("Content-Encoding", "Git-Protocol"):
            if headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = headers[header]
        proc = subprocess.run(
            [self._git, "-c", "http.receivepack=true", "http-backend"],
            input=body, env=env, capture_output=True, timeout=_BACKEND_TIMEOUT, check=False,
        )
        return proc.stdout


def _git_binary() -> str:
    git = shutil.which("git")
    if git is None:
        raise RuntimeError("git is not installed")
    return git


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        """A client that went away mid-answer (a fault test's proxy reset it) is not news."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    git: GitHttpServer
    timeout = _SOCKET_TIMEOUT

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        info = RequestInfo(self.command, urllib.parse.unquote(parsed.path), parsed.query)
        info.extra["content_encoding"] = self.headers.get("Content-Encoding")
        info.extra["chunked"] = self._chunked()
        body = self._read_body()
        allowed, info.user = self.git.authorized(self.headers.get("Authorization"))
        info.status = None if allowed else 401
        if self.git.on_request is not None:
            self.git.on_request(info)
        if not allowed:
            self.git.record(info)
            self._answer(401, [("WWW-Authenticate", 'Basic realm="git"')], b"Unauthorized\n")
            return
        status, headers, payload = _parse_cgi(self.git.run_backend(info, self.headers, body))
        info.status = status
        self.git.record(info)
        if self.git.before_response is not None:
            self.git.before_response(info)
        self._answer(status, headers, payload)

    def _chunked(self) -> bool:
        return self.headers.get("Transfer-Encoding", "").lower() == "chunked"

    def _read_body(self) -> bytes:
        if self._chunked():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers, up to the blank line
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()  # the CRLF after each chunk

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        if not self.git.keep_alive:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


def _parse_cgi(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) from a CGI's output (`Status:` header, blank line, body)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = output.partition(sep)
        if found:
            break
    else:
        return 502, [], b"bad gateway: the backend's answer has no header\n"
    status, headers = 200, []
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "status":
            status = int(value.strip().split(" ", 1)[0])
        elif key.strip():
            headers.append((key.strip(), value.strip()))
    return status, headers, body
