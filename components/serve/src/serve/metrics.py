"""Prometheus metrics added to KServe's own, exposed on the same ``/metrics``.

KServe itself only records per-stage latency histograms
(``request_{preprocess,predict,postprocess}_seconds``, label ``model_name``),
without status codes. Canary analysis also needs request counts by status
code, so an ASGI middleware records every inference request, including the
ones that fail before they reach the model (unknown model, malformed JSON).
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable

from prometheus_client import Counter, Histogram

LABELS = ("model_name", "protocol", "code")
REQUESTS = Counter("serve_inference_requests_total",
                   "Inference requests by model, protocol and HTTP status code", LABELS)
LATENCY = Histogram("serve_inference_request_duration_seconds",
                    "End-to-end inference request latency", ("model_name", "protocol"))
PREDICTIONS = Counter("serve_predictions_total",
                      "Predicted labels returned, by model and class",
                      ("model_name", "predicted_class"))

_ROUTES = (
    ("v1", re.compile(r"^/v1/models/(?P<model>[^/:]+):predict$")),
    ("v2", re.compile(r"^/v2/models/(?P<model>[^/]+)(?:/versions/[^/]+)?/infer$")),
)
UNKNOWN_MODEL = "unknown"


def match_route(path: str) -> tuple[str, str] | None:
    """Return (protocol, model name) for an inference path, else None."""
    for protocol, pattern in _ROUTES:
        found = pattern.match(path)
        if found:
            return protocol, found.group("model")
    return None


class InferenceMetricsMiddleware:
    """Pure ASGI middleware; model names outside ``model_names`` are recorded as
    ``unknown`` so that bad requests cannot blow up label cardinality."""

    def __init__(self, app, model_names: Iterable[str]):
        self.app = app
        self.model_names = frozenset(model_names)

    async def __call__(self, scope, receive, send):
        route = match_route(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        protocol, model = route
        model = model if model in self.model_names else UNKNOWN_MODEL
        status = {"code": 500}

        async def send_and_record_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            LATENCY.labels(model, protocol).observe(time.perf_counter() - start)
            REQUESTS.labels(model, protocol, str(status["code"])).inc()
