"""A KServe-style model server: the v1 predict protocol, v2 health, Prometheus metrics.

    POST /v1/models/<name>:predict   {"instances": [[4 floats], ...]} -> {"predictions": [0|1, ...]}
    GET  /v1/models/<name>           {"name": ..., "ready": true}
    GET  /v2/health/live, /v2/health/ready, /v2/models/<name>/ready
    GET  /metrics                    model_requests_total{code="..."} (a counter)

Canary analysis in mlops.yaml queries `model_requests_total` by status code.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .core import FEATURES, Model

METRIC = "model_requests_total"


class Metrics:
    """Prediction requests by HTTP status code, in Prometheus' text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[int] = Counter()

    def count(self, code: int) -> None:
        with self._lock:
            self._counts[code] += 1

    def render(self) -> str:
        with self._lock:
            counts = sorted(self._counts.items())
        lines = [f"# HELP {METRIC} Prediction requests by HTTP status code.",
                 f"# TYPE {METRIC} counter"]
        lines += [f'{METRIC}{{code="{code}"}} {n}' for code, n in counts]
        return "\n".join(lines) + "\n"


def _instances(body: bytes) -> list[list[float]]:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise ValueError("body is not JSON") from None
    rows = data.get("instances") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ValueError('expected {"instances": [[...], ...]}')
    for row in rows:
        if (not isinstance(row, list) or len(row) != FEATURES
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in row)):
            raise ValueError(f"each instance must be a list of {FEATURES} numbers")
    return [[float(x) for x in row] for row in rows]


def make_server(model: Model, name: str, host: str, port: int) -> ThreadingHTTPServer:
    metrics = Metrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ready = {"/v2/health/live", "/v2/health/ready", f"/v2/models/{name}/ready"}
            if self.path == "/metrics":
                self._send(200, metrics.render(), "text/plain; version=0.0.4")
            elif self.path in ready:
                self._send(200, {"ready": True})
            elif self.path == f"/v1/models/{name}":
                self._send(200, {"name": name, "ready": True})
            else:
                self._send(404, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:
            if self.path != f"/v1/models/{name}:predict":
                code, reply = 404, {"error": f"no model at {self.path}"}
            else:
                code, reply = self._predict()
            metrics.count(code)
            self._send(code, reply)

        def _predict(self) -> tuple[int, dict[str, Any]]:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                rows = _instances(self.rfile.read(length))
            except ValueError as exc:
                return 400, {"error": str(exc)}
            return 200, {"predictions": model.predict(rows)}

        def _send(self, code: int, body: dict[str, Any] | str,
                  kind: str = "application/json") -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request is noise under load; metrics count them

    return ThreadingHTTPServer((host, port), Handler)
