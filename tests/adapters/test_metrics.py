"""The Prometheus adapter against a real Prometheus scraping a real target on loopback."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops.adapters.metrics import Prometheus, PrometheusError
from tests.support.authproxy import AuthProxy
from tests.support.services import PrometheusServer

EXPOSITION = (
    '# TYPE demo_requests_total counter\n'
    'demo_requests_total{code="200"} 40\n'
    'demo_requests_total{code="500"} 2\n'
)


class Exporter(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = EXPOSITION.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    server = PrometheusServer(tmp_path_factory.mktemp("prom"),
                              [f"127.0.0.1:{exporter.server_address[1]}"],
                              labels={"revision": "cancer-00001"}).start()
    client = Prometheus(server.url)
    deadline = time.monotonic() + 30
    while client.query("sum(demo_requests_total)") is None:
        assert time.monotonic() < deadline, "prometheus never scraped the exporter"
        time.sleep(0.5)
    yield server
    server.stop()
    exporter.shutdown()


def test_instant_query_returns_one_number(prometheus):
    client = Prometheus(prometheus.url)
    assert client.query("sum(demo_requests_total)") == 42
    ratio = 'sum(demo_requests_total{code=~"5..",revision="cancer-00001"}) / sum(demo_requests_total)'
    assert client.query(ratio) == pytest.approx(2 / 42)


def test_no_series_is_none_not_zero(prometheus):
    assert Prometheus(prometheus.url).query('sum(demo_requests_total{revision="nope"})') is None


def test_many_series_must_be_aggregated(prometheus):
    with pytest.raises(PrometheusError, match="returned 2 series; aggregate it"):
        Prometheus(prometheus.url).query("demo_requests_total")


def test_bad_promql_is_an_error(prometheus):
    with pytest.raises(PrometheusError, match="query failed: .*parse error"):
        Prometheus(prometheus.url).query("sum(")


def test_unreachable_prometheus_is_an_error_not_a_pass():
    from tests.support.services import free_port

    with pytest.raises(PrometheusError, match="unavailable"):
        Prometheus(f"http://127.0.0.1:{free_port()}", attempts=2).query("up")


@pytest.mark.parametrize(("userinfo", "token", "accepted"), [
    ("ops:p%40ss", "tok-1", "Bearer tok-1"),  # both given: the token is sent, not the URL's
    ("ops:p%40ss", None, "Basic b3BzOnBAc3M="),  # base64 of the decoded "ops:p@ss"
])
def test_credentials_in_the_url_do_not_replace_the_bearer_token(prometheus, userinfo, token,
                                                                accepted):
    with AuthProxy(prometheus.url, {accepted}) as proxy:
        client = Prometheus(proxy.url(userinfo), token=token)
        assert client.query("sum(demo_requests_total)") == 42
    assert proxy.requests == [True]
    assert "ops" not in client.url and "p%40ss" not in client.url


def test_the_token_variable_is_the_one_the_configuration_reference_documents():
    from mlops import config
    from mlops.adapters import metrics

    assert metrics.TOKEN_ENV == config.PROMETHEUS_TOKEN_ENV == "MLOPS_PROMETHEUS_TOKEN"


class EchoingError(BaseHTTPRequestHandler):
    """A Prometheus (or its auth proxy) whose error repeats, bare and over several lines,
    the credential it was sent."""

    def do_GET(self):  # noqa: N802 - http.server's name
        kind, _, value = self.headers.get("Authorization", "").partition(" ")
        secret = base64.b64decode(value).decode().partition(":")[2] if kind == "Basic" else value
        body = json.dumps({"status": "error", "errorType": "bad_data",
                           "error": f"not allowed\nfor {secret}\n"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("userinfo", "token", "secret"), [
    ("", "tok-Echo7Rq", "tok-Echo7Rq"), ("ops:pw-Echo7Rq@", None, "pw-Echo7Rq")])
def test_an_error_repeating_the_credential_is_one_line_without_it(userinfo, token, secret):
    # Its text goes into decision records, which are committed.
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingError)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://{userinfo}127.0.0.1:{server.server_address[1]}"
        with pytest.raises(PrometheusError) as err:
            Prometheus(url, token=token).query("up")
    finally:
        server.shutdown()
        server.server_close()
    assert err.value.message == "query failed: not allowed for ***: up"
    assert secret not in err.value.message
