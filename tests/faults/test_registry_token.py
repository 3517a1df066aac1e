"""A registry whose token endpoint answers nonsense (issue 16): one line, never `None`
or a traceback.

Docker registry token auth: `/v2/` answers 401 with `WWW-Authenticate: Bearer
realm=...`, and the realm must answer a JSON object with a `token`. The server
here is the hostile side of that exchange (no real registry answers like
this), so the adapter's handling of it is what is tested, directly and
through `mlops build`.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from mlops.adapters.registry import Registry, RetryPolicy
from mlops.errors import RegistryError
from tests.conftest import mlops_yaml, tiny_component

ANSWERS = {
    "not-json": (b"<html>sign in</html>", "no JSON"),
    "json-list": (b'["token"]', "a JSON list without a token"),
    "json-without-token": (b'{"expires_in": 60}', "a JSON dict without a token"),
    "empty-token": (b'{"token": ""}', "a JSON dict without a token"),
}


@pytest.fixture
def hostile(request):
    """127.0.0.1:PORT, demanding a bearer token from a realm that answers `body`."""
    body = ANSWERS[request.param][0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/token"):
                self._answer(200, body, [])
                return
            realm = f'Bearer realm="http://{self.headers["Host"]}/token",service="registry"'
            self._answer(401, b"{}", [("WWW-Authenticate", realm)])

        def _answer(self, status: int, data: bytes, headers) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", ANSWERS[request.param][1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("hostile", sorted(ANSWERS), indirect=True)
def test_a_token_endpoint_without_a_token_is_one_clear_error(hostile):
    host, got = hostile
    with pytest.raises(RegistryError) as err:
        Registry(host, policy=RetryPolicy(attempts=1)).manifest_digest("ml/train", "latest")
    assert str(err.value) == (f"registry {host}: its token endpoint answered {got}; expected "
                              "a JSON object with a 'token' (Docker registry token auth)")


@pytest.mark.parametrize("hostile", ["not-json"], indirect=True)
def test_build_against_it_fails_in_one_line(hostile, project):
    host, got = hostile
    proj = project({"mlops.yaml": mlops_yaml(f"{host}/ml"), **tiny_component("train")})
    result = proj.run("build")
    assert result.code == 1, result.err
    errors = [ln for ln in result.err.splitlines() if ln.startswith("mlops: error:")]
    assert errors == [f"mlops: error: 1 of 1 components failed; train: registry {host}: its "
                      f"token endpoint answered {got}; expected a JSON object with a 'token' "
                      "(Docker registry token auth)"], result.err
    assert "Traceback" not in result.err
