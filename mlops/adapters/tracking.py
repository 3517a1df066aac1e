"""MLflow's tracking server and model registry, through the `mlflow` client library.

The only importer of mlflow, and only when a URI is configured: `Tracker` loads
the client on its first call, so a repository without `tracking:` (and without
$MLFLOW_TRACKING_URI) never imports it. Every failure, an unreachable server, a
refusal, a missing client, is one `TrackingError` whose text is redacted;
credentials ($MLFLOW_TRACKING_TOKEN, a password) are read by the client itself
and never pass through here, except to be masked where a server's answer
repeats them.

The client's own HTTP retries (seven, with backoff, by default: minutes against
a server that is down) are turned off unless the user set them; a connection
that fails is retried here instead, a bounded few times (`retry`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from mlops.adapters.retry import with_retries
from mlops.errors import MlopsError
from mlops.records import dataclass
from mlops.redact import redact

T = TypeVar("T")
ATTEMPTS = 3
# What the client reads from the environment; a user's own setting wins (setdefault).
CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
LOCAL_SCHEMES = ("file", "")
# Masked wherever an error repeats them, also bare, where no pattern of `redact` sees them.
SECRET_VARIABLES = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")


class TrackingError(MlopsError):
    """MLflow could not be reached, or refused a call (or its client is not installed)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code  # MLflow's error code, e.g. RESOURCE_ALREADY_EXISTS


@dataclass(frozen=True)
class RunLog:
    """One finished run as MLflow takes it: names, values and times (ms since the epoch)."""

    experiment: str
    name: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    source: str
    run_id: str | None
    created_ms: int
    aliases: tuple[str, ...] = ()


def is_local(uri: str) -> bool:
    """A model URI that names a path on this machine (`file:` or a bare path)."""
    scheme, sep, _ = uri.partition(":")
    return not sep or scheme.lower() in LOCAL_SCHEMES or len(scheme) == 1  # C:\\...


class Tracker:
    """A client of the tracking server at `uri`; mlflow is imported on the first call."""

    def __init__(self, uri: str, attempts: int = ATTEMPTS) -> None:
        self.uri = uri
        self.attempts = attempts
        self._client: Any = None
        self._mlflow: Any = None

    # -- runs --------------------------------------------------------------------------

    def log_run(self, run: RunLog) -> tuple[str, str]:
        """Create the run in its experiment (made if missing), log it, finish it:
        (experiment id, MLflow run id)."""
        experiment_id = self.experiment_id(run.experiment)
        created = self._call(lambda c: c.create_run(experiment_id, start_time=run.start_ms,
                                                     run_name=run.name, tags=dict(run.tags)))
        run_id = created.info.run_id
        entities = self._entities()
        metrics = [entities.Metric(k, float(v), run.end_ms, 0) for k, v in run.metrics.items()]
        params = [entities.Param(k, v) for k, v in run.params.items()]
        self._call(lambda c: c.log_batch(run_id, metrics=metrics, params=params))
        self._call(lambda c: c.set_terminated(run_id, "FINISHED", end_time=run.end_ms))
        return experiment_id, run_id

    def experiment_id(self, name: str) -> str:
        found = self._call(lambda c: c.get_experiment_by_name(name))
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self._call(lambda c: c.create_experiment(name)))
        except TrackingError as exc:  # another run made it meanwhile
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise
            return str(self._call(lambda c: c.get_experiment_by_name(name)).experiment_id)

    def get_run(self, run_id: str) -> Any:
        return self._call(lambda c: c.get_run(run_id))

    # -- the model registry ------------------------------------------------------------

    def register(self, model: str, model_uri: str, run_id: str,
                 tags: Mapping[str, str]) -> ModelVersion:
        """A new version of `model` (made if missing) for `model_uri`, logged by `run_id`.

        The server refuses a local path as a version's source unless it lies in the
        run's artifact folder, so a `file:` model is registered as `runs:/<run>/model`;
        the model URI itself is always in the version's tags (`tags`)."""
        self._ensure_model(model)
        source = f"runs:/{run_id}/model" if is_local(model_uri) else model_uri
        made = self._call(lambda c: c.create_model_version(model, source, run_id=run_id,
                                                           tags=dict(tags)))
        return _version(made)

    def _ensure_model(self, model: str) -> None:
        try:
            self._call(lambda c: c.create_registered_model(model))
        except TrackingError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":
                raise

    def versions_tagged(self, key: str, value: str, model: str | None = None) -> list[ModelVersion]:
        """Every version whose tag `key` is `value` (of `model` only, when given)."""
        if "'" in value or "`" in key:
            raise TrackingError(f"cannot search MLflow for a tag value with a quote: {value!r}")
        query = f"tags.`{key}` = '{value}'"
        if model is not None:
            query = f"name = '{model.replace(chr(39), '')}' and {query}"
        found = self._call(lambda c: c.search_model_versions(query, max_results=1000))
        return [_version(v) for v in found]

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._call(lambda c: c.set_registered_model_alias(model, alias, version))

    def version_by_alias(self, model: str, alias: str) -> ModelVersion | None:
        try:
            return _version(self._call(lambda c: c.get_model_version_by_alias(model, alias)))
        except TrackingError as exc:
            if exc.code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    # -- the client --------------------------------------------------------------------

    def _call(self, fn: Callable[[Any], T]) -> T:
        client = self._connect()
        with _quiet():
            try:
                return with_retries(lambda: fn(client), _unreachable, attempts=self.attempts,
                                    initial=0.3, max_wait=2.0)
            except self._mlflow.exceptions.MlflowException as exc:
                raise TrackingError(_message(exc, self.uri),
                                    str(getattr(exc, "error_code", "") or "")) from None

    def _connect(self) -> Any:
        if self._client is None:
            for key, value in CLIENT_DEFAULTS.items():
                os.environ.setdefault(key, value)
            # the client prints "View run ... at ..." on stdout, which is mlops' own
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
            try:
                import mlflow.exceptions
                from mlflow.tracking import MlflowClient
            except ImportError:
                raise TrackingError("MLflow tracking is configured, but the mlflow client is "
                                    "not installed (pip install 'mlops[mlflow]')") from None
            self._mlflow = mlflow
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _entities(self) -> Any:
        import mlflow.entities

        return mlflow.entities


def _version(v: Any) -> ModelVersion:
    return ModelVersion(name=v.name, version=str(v.version), source=v.source,
                        run_id=v.run_id or None, created_ms=int(v.creation_timestamp or 0),
                        aliases=tuple(getattr(v, "aliases", ()) or ()))


def _unreachable(exc: BaseException) -> bool:
    """The server refused the connection or timed out (the client wraps requests' error)."""
    from mlops.adapters import transport  # loaded by the client already: requests is its

    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, transport.UNREACHABLE)


def _message(exc: BaseException, uri: str) -> str:
    """One redacted line: the error code first (when there is one), no URL credentials.
    Redacted before it is cut short: a cut inside `user:password@` would hide the `@`
    the redaction looks for."""
    if _unreachable(exc):
        cause = _short(exc.__cause__ or exc.__context__, uri)
        return redact(f"MLflow at {uri} is unreachable: {cause}")
    text = " ".join(str(getattr(exc, "message", exc)).split())
    code = getattr(exc, "error_code", "")
    if code and not text.startswith(code):
        text = f"{code}: {text}"
    return redact(text, _secrets(uri))[:500]


def _short(exc: BaseException | None, uri: str) -> str:
    text = " ".join(str(exc).split())
    if "Connection refused" in text:
        return "connection refused"
    return redact(text, _secrets(uri))[:200]


def _secrets(uri: str) -> list[str | None]:
    """What the client sends and a server may repeat: its variables, the URI's password."""
    from urllib.parse import unquote, urlsplit

    password = urlsplit(uri).password
    return [*(os.environ.get(name) for name in SECRET_VARIABLES),
            password, unquote(password) if password else None]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """mlflow's INFO lines ("Waiting up to 300 seconds ...") stay off mlops' stderr."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def now_ms() -> int:
    return int(time.time() * 1000)
