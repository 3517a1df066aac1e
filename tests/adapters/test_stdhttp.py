"""The standard-library HTTP session against real HTTP servers on 127.0.0.1.

Each server records what reached it (connection, method, target, headers), so
the tests see keep-alive reuse, redirects, proxies and failures from the other
end of the socket.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops.adapters import stdhttp


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer):
        super().__init__(("127.0.0.1", 0), Handler)
        self.answer = answer  # handler -> None, writes the response
        self.seen: list[tuple[int, str, str, dict[str, str]]] = []  # (conn, method, path, hdrs)
        self.connections = 0
        self._lock = threading.Lock()

    def handle_error(self, request, client_address):
        pass  # a client that gave up (the timeout tests) is no news

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server._lock:
            self.server.connections += 1
            self.conn_id = self.server.connections

    def log_message(self, *args):
        pass

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.conn_id, self.command, self.path, dict(self.headers)))
        self.server.answer(self)

    do_GET = do_HEAD = do_PUT = do_POST = _any


def reply(handler, status=200, body=b"ok", headers=None):
    handler.send_response(status)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy",
                 "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_requests_reuse_one_connection_and_carry_params_auth_and_body(no_proxy_env):
    with Recorder(lambda h: reply(h, body=h.path.encode())) as server:
        session = stdhttp.Session(trust_env=False)
        bodies = [session.request("GET", f"{server.base}/v2/x", params={"n": str(i)}).content
                  for i in range(5)]
        put = session.request("PUT", f"{server.base}/up", data=b"payload", auth=("u", "p w"))
    assert bodies == [f"/v2/x?n={i}".encode() for i in range(5)]
    assert put.status_code == 200
    assert server.connections == 1
    _, method, _, headers = server.seen[-1]
    assert method == "PUT" and headers["Content-Length"] == "7"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p w").decode()
    assert headers["Accept-Encoding"] == "identity"


def test_threads_get_their_own_connections_and_every_answer(no_proxy_env):
    def slow(h):
        time.sleep(0.05)
        reply(h, body=h.path.encode())

    with Recorder(slow) as server:
        session = stdhttp.Session(trust_env=False)
        results: dict[int, bytes] = {}

        def fetch(i):
            results[i] = session.get(f"{server.base}/{i}").content

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == {i: f"/{i}".encode() for i in range(6)}
    assert 2 <= server.connections <= 6


def test_a_connection_the_server_closed_while_idle_is_replaced(no_proxy_env):
    def close_after(h):
        reply(h, headers={"Connection": "keep-alive"})
        h.close_connection = True  # the server drops it once idle, without telling

    with Recorder(close_after) as server:
        session = stdhttp.Session(trust_env=False)
        assert session.get(server.base + "/a").status_code == 200
        time.sleep(0.1)
        assert session.get(server.base + "/b").status_code == 200
    assert server.connections == 2


def test_a_redirect_to_another_host_drops_the_credentials(no_proxy_env):
    with Recorder(lambda h: reply(h, body=b"blob")) as storage:
        other = storage.base.replace("127.0.0.1", "localhost")

        def redirect(h):
            if h.path == "/same":
                reply(h, 307, b"", {"Location": "/final"})
            elif h.path == "/away":
                reply(h, 307, b"", {"Location": other + "/stored"})
            else:
                reply(h, body=b"here")

        with Recorder(redirect) as registry:
            session = stdhttp.Session(trust_env=False)
            same = session.get(registry.base + "/same", auth=("u", "secret"))
            away = session.get(registry.base + "/away", headers={"Authorization": "Bearer t"})
    assert (same.content, away.content) == (b"here", b"blob")
    assert registry.seen[1][2] == "/final" and "Authorization" in registry.seen[1][3]
    assert [s[2] for s in storage.seen] == ["/stored"]
    assert "Authorization" not in storage.seen[0][3]


def test_a_put_is_not_redirected(no_proxy_env):
    with Recorder(lambda h: reply(h, 307, b"", {"Location": "/elsewhere"})) as server:
        resp = stdhttp.Session(trust_env=False).request("PUT", server.base + "/x", data=b"1")
    assert resp.status_code == 307
    assert [s[2] for s in server.seen] == ["/x"]


def test_a_plain_http_proxy_from_the_environment_gets_the_whole_url(monkeypatch, no_proxy_env):
    with Recorder(lambda h: reply(h, body=b"via proxy")) as proxy:
        monkeypatch.setenv("http_proxy", proxy.base.replace("//", "//pu:p%40ss@"))
        target = "http://registry.invalid:5000/v2/"
        assert stdhttp.Session(trust_env=True).get(target).content == b"via proxy"
        assert [s[2] for s in proxy.seen] == [target]
        assert proxy.seen[0][3]["Proxy-Authorization"] == (
            "Basic " + base64.b64encode(b"pu:p@ss").decode())
        monkeypatch.setenv("no_proxy", "registry.invalid")
        with pytest.raises(stdhttp.Unreachable):
            stdhttp.Session(trust_env=True).get(target, timeout=2)
    assert len(proxy.seen) == 1


def test_proxies_are_ignored_without_trust_env(monkeypatch, no_proxy_env):
    with Recorder(lambda h: reply(h)) as proxy, Recorder(lambda h: reply(h, body=b"d")) as direct:
        monkeypatch.setenv("http_proxy", proxy.base)
        assert stdhttp.Session(trust_env=False).get(direct.base + "/").content == b"d"
    assert proxy.seen == [] and len(direct.seen) == 1


def test_a_refused_connection_is_unreachable(no_proxy_env):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(stdhttp.Unreachable, match="Connection refused"):
        stdhttp.Session(trust_env=False).get(f"http://127.0.0.1:{port}/")


def test_a_stalled_answer_times_out(no_proxy_env):
    def stall(h):
        time.sleep(1.5)
        reply(h)

    with Recorder(stall) as server:
        started = time.monotonic()
        with pytest.raises(stdhttp.Unreachable, match="timed out"):
            stdhttp.Session(trust_env=False).get(server.base + "/", timeout=(2, 0.3))
        elapsed = time.monotonic() - started  # not the server's shutdown (up to 0.5 s)
    assert elapsed < 1.4


def test_a_body_cut_short_is_interrupted(no_proxy_env):
    def short(h):
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        h.wfile.write(b"only part")
        h.close_connection = True

    with Recorder(short) as server:
        session = stdhttp.Session(trust_env=False)
        with pytest.raises(stdhttp.Interrupted, match="closed mid-answer"):
            session.get(server.base + "/")
        with pytest.raises(stdhttp.Interrupted, match="closed mid-answer"):
            with session.get(server.base + "/", stream=True) as resp:
                b"".join(resp.iter_content(4))


def test_a_streamed_body_comes_in_chunks_and_frees_the_connection(no_proxy_env):
    with Recorder(lambda h: reply(h, body=b"x" * 10_000)) as server:
        session = stdhttp.Session(trust_env=False)
        with session.get(server.base + "/blob", stream=True) as resp:
            chunks = list(resp.iter_content(4096))
        again = session.get(server.base + "/blob").content
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert again == b"x" * 10_000
    assert server.connections == 1


# -- TLS: a certificate made here, a CONNECT proxy in front --------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """(cert.pem, key.pem) for 127.0.0.1, self-signed: trusted only when named."""
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


class TlsRecorder(Recorder):
    def __init__(self, answer, certificate):
        import ssl

        super().__init__(answer)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


class ConnectProxy:
    """A CONNECT tunnel on 127.0.0.1 that records what it was asked to reach."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.asked: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
        self.asked.append(f"{method} {target}")
        self.auth = [line.split(":", 1)[1].strip() for line in head.decode().split("\r\n")
                     if line.lower().startswith("proxy-authorization:")]
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.listener.close()


@pytest.mark.parametrize("bundle", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_https_trusts_a_named_ca_bundle_and_refuses_an_unknown_certificate(
        monkeypatch, no_proxy_env, certificate, bundle):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with TlsRecorder(lambda h: reply(h, body=b"secure"), certificate) as server:
        with pytest.raises(stdhttp.Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
            stdhttp.Session(trust_env=True).get(server.base + "/v2/")
        monkeypatch.setenv(bundle, str(certificate[0]))
        assert stdhttp.Session(trust_env=True).get(server.base + "/v2/").content == b"secure"
        with pytest.raises(stdhttp.Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
            stdhttp.Session(trust_env=False).get(server.base + "/v2/")  # env not read


def test_https_goes_through_the_environments_connect_proxy(monkeypatch, no_proxy_env,
                                                            certificate):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    proxy = ConnectProxy()
    try:
        with TlsRecorder(lambda h: reply(h, body=h.path.encode()), certificate) as server:
            monkeypatch.setenv("https_proxy", proxy.url.replace("//", "//tunnel:pw@"))
            session = stdhttp.Session(trust_env=True)
            bodies = [session.get(f"{server.base}/v2/{i}").content for i in range(3)]
    finally:
        proxy.close()
    assert bodies == [b"/v2/0", b"/v2/1", b"/v2/2"]
    port = server.server_address[1]
    assert proxy.asked == [f"CONNECT 127.0.0.1:{port}"]  # one tunnel, kept alive
    assert proxy.auth == ["Basic " + base64.b64encode(b"tunnel:pw").decode()]
    assert server.connections == 1


@pytest.mark.parametrize(("variable", "names", "proxied"), [
    ("no_proxy", "registry.example.com", True),  # names another host: the tunnel is used
    ("no_proxy", "127.0.0.1", False),
    ("no_proxy", "registry.example.com, 127.0.0.1", False),
    ("NO_PROXY", "127.0.0.1", False),
    ("no_proxy", "*", False),
    ("no_proxy", "127.0.0.1:{port}", False),  # as requests and Docker read a host:port
    ("no_proxy", "127.0.0.1:1", True),  # the same host on another port is not named
], ids=["another-host", "this-host", "in-a-list", "upper-case", "everything", "host-and-port",
        "another-port"])
def test_https_skips_the_proxy_for_a_host_no_proxy_names(monkeypatch, no_proxy_env,
                                                          certificate, variable, names,
                                                          proxied):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    proxy = ConnectProxy()
    try:
        with TlsRecorder(lambda h: reply(h, body=b"direct"), certificate) as server:
            monkeypatch.setenv("https_proxy", proxy.url)
            monkeypatch.setenv(variable, names.format(port=server.server_address[1]))
            assert stdhttp.Session(trust_env=True).get(server.base + "/v2/").content == b"direct"
    finally:
        proxy.close()
    port = server.server_address[1]
    assert proxy.asked == ([f"CONNECT 127.0.0.1:{port}"] if proxied else [])
    assert [s[2] for s in server.seen] == ["/v2/"]
