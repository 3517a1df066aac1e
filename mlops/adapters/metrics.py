"""Prometheus adapter: instant queries over the HTTP API (`/api/v1/query`).

An answer is a number, or None when the query matched nothing. Trouble
reaching Prometheus (refused or reset connections, 5xx, 429, no answer within
`MLOPS_PROMETHEUS_TIMEOUT` seconds) is retried briefly (`MLOPS_PROMETHEUS_RETRIES`
attempts), then raised: the caller must turn it into a failed or inconclusive
analysis, never a pass. A bearer token (`MLOPS_PROMETHEUS_TOKEN`) is sent but
never printed.
"""

from __future__ import annotations

import math
import os
from urllib.parse import unquote, urlsplit, urlunsplit

from mlops.adapters import transport
from mlops.adapters.retry import with_retries
from mlops.errors import MlopsError
from mlops.redact import redact

TIMEOUT_ENV = "MLOPS_PROMETHEUS_TIMEOUT"
RETRIES_ENV = "MLOPS_PROMETHEUS_RETRIES"
DEFAULT_TIMEOUT = 10.0
DEFAULT_ATTEMPTS = 3
TOKEN_ENV = "MLOPS_PROMETHEUS_TOKEN"  # noqa: S105 - a variable's name, sent as a bearer token


class PrometheusError(MlopsError):
    """Prometheus could not answer; an analysis that depends on it cannot pass."""


class _Transient(PrometheusError):
    pass


class Prometheus:
    def __init__(self, url: str, token: str | None = None, timeout: float | None = None,
                 attempts: int | None = None) -> None:
        self.url, self._basic = _split_userinfo(url.rstrip("/"))
        self._token = token if token is not None else os.environ.get(TOKEN_ENV)
        self.timeout = timeout if timeout is not None else _env_number(TIMEOUT_ENV,
                                                                       DEFAULT_TIMEOUT)
        self.attempts = max(1, attempts if attempts is not None else
                            int(_env_number(RETRIES_ENV, DEFAULT_ATTEMPTS)))
        self._session = transport.session()

    def query(self, promql: str) -> float | None:
        """The single value of an instant query; None if it returned no series."""
        try:
            data = with_retries(lambda: self._get(promql), lambda e: isinstance(e, _Transient),
                                attempts=self.attempts, initial=0.2, max_wait=2.0)
        except _Transient as exc:
            raise PrometheusError(f"Prometheus at {redact(self.url)} unavailable after "
                                  f"{self.attempts} attempt(s): {exc}") from None
        return _single_value(data, promql)

    def _get(self, promql: str) -> dict:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        # requests would put a URL's user:password over the bearer header; the token wins.
        auth = None if self._token else self._basic
        try:
            resp = self._session.get(f"{self.url}/api/v1/query", params={"query": promql},
                                     headers=headers, auth=auth, timeout=self.timeout)
        except transport.INTERRUPTED as exc:
            raise _Transient(_reason(exc)) from None
        except transport.RequestError as exc:
            raise PrometheusError(f"cannot query Prometheus: {_reason(exc)}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Transient(f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusError(f"Prometheus answered HTTP {resp.status_code} without JSON") \
                from None
        if body.get("status") != "success":
            error = self._scrubbed(body.get("error", resp.status_code))
            raise PrometheusError(f"query failed: {error}: {promql[:200]}")
        return dict(body["data"])

    def _scrubbed(self, error: object) -> str:
        """Prometheus' (or its proxy's) error as one redacted line: it may repeat the token
        or password it was sent, bare. It ends up in decision records, which are committed."""
        secrets = [self._token, self._basic[1] if self._basic else None]
        return redact(" ".join(str(error).split()), secrets)[:300]


def _split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without `user:password@`, and those credentials (decoded) if it had them."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, (unquote(parts.username or ""), unquote(parts.password or ""))


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


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise PrometheusError(f"${name} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise PrometheusError(f"${name} must be greater than 0, got {text!r}")
    return value


def _reason(exc: Exception) -> str:
    """A short cause without the URL's query string: 'connection refused', 'timed out', ..."""
    text = str(exc).lower()
    if isinstance(exc, transport.Timeout) or "timed out" in text:
        return "no answer within the timeout"
    for needle in ("connection refused", "connection reset", "connection aborted",
                   "connection broken", "remote end closed"):
        if needle in text:
            return needle
    return type(exc).__name__
