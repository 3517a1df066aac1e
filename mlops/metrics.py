"""Prometheus adapter: instant queries over the HTTP API (`/api/v1/query`).

An answer is a number, or None when the query matched nothing. Trouble
reaching Prometheus is retried briefly, then raised: the caller must turn it
into a failed or inconclusive analysis, never a pass. A bearer token
(`MLOPS_PROMETHEUS_TOKEN`) is sent but never printed.
"""

from __future__ import annotations

import math
import os

import requests

from mlops.config import PROMETHEUS_TOKEN_ENV as TOKEN_ENV
from mlops.errors import MlopsError
from mlops.redact import redact
from mlops.retry import with_retries


class PrometheusError(MlopsError):
    """Prometheus could not answer; an analysis that depends on it cannot pass."""


class _Transient(PrometheusError):
    pass


class Prometheus:
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0,
                 attempts: int = 3) -> None:
        self.url = url.rstrip("/")
        self._token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.timeout = timeout
        self.attempts = attempts
        self._session = requests.Session()

    def query(self, promql: str) -> float | None:
        """The single value of an instant query; None if it returned no series."""
        try:
            data = with_retries(lambda: self._get(promql), lambda e: isinstance(e, _Transient),
                                attempts=self.attempts, initial=0.2, max_wait=2.0)
        except _Transient as exc:
            raise PrometheusError(f"Prometheus at {redact(self.url)} unavailable: {exc}") from None
        return _single_value(data, promql)

    def _get(self, promql: str) -> dict:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            resp = self._session.get(f"{self.url}/api/v1/query", params={"query": promql},
                                     headers=headers, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Transient(type(exc).__name__) from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Transient(f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusError(f"Prometheus answered HTTP {resp.status_code} without JSON") \
                from None
        if body.get("status") != "success":
            raise PrometheusError(f"query failed: {body.get('error', resp.status_code)}: "
                                  f"{promql[:200]}")
        return dict(body["data"])


def _single_value(data: dict, promql: str) -> float | None:
    kind, result = data.get("resultType"), data.get("result") or []
    if kind == "scalar":
        return _number(result[1])
    if kind != "vector":
        raise PrometheusError(f"query must give an instant vector or scalar, got {kind}")
    if not result:
        return None
    if len(result) > 1:
        raise PrometheusError(
            f"query returned {len(result)} series; aggregate it to one (sum, avg ...): "
            f"{promql[:200]}")
    return _number(result[0]["value"][1])


def _number(text: str) -> float | None:
    value = float(text)
    return None if math.isnan(value) or math.isinf(value) else value
