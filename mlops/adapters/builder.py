"""Docker Engine adapter: the only importer of the docker SDK.

Builds from a prepared context, runs a component's test command in the fresh
image, tags and pushes, and reads registry credentials from the usual Docker
config. Push errors that the engine reports inside the stream become errors
here, split into transient (retry) and permanent; so does a layer upload the
engine is about to retry itself, so that mlops's bounded retries
(`MLOPS_REGISTRY_RETRIES`) are the only ones.

Trouble reaching the engine itself (refused or reset connections, a 502/503/504
or 429 from whatever fronts its socket, no answer within `MLOPS_DOCKER_TIMEOUT`)
is retried, bounded (`MLOPS_DOCKER_RETRIES` attempts), for the steps that are
safe to repeat: connecting, building from the same context, inspecting,
tagging, and running a test in a fresh, named container.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from typing import IO, TypeVar

import docker
import docker.auth
import docker.errors

from mlops.adapters import transport
from mlops.adapters.retry import with_retries
from mlops.errors import BuildError
from mlops.records import dataclass
from mlops.redact import redact

LogFn = Callable[[str], None]
T = TypeVar("T")

TIMEOUT_ENV = "MLOPS_DOCKER_TIMEOUT"
RETRIES_ENV = "MLOPS_DOCKER_RETRIES"
RETRY_STATUSES = {429, 502, 503, 504}  # a 500 is the engine's own verdict: not retried

TRANSIENT_PUSH_HINTS = (
    "connection refused",
    "connection reset",
    "connection broken",
    "broken pipe",
    "eof",
    "i/o timeout",
    "timeout",
    "timed out",
    "503",
    "502",
    "500 internal",
    "429",
    "too many requests",
    "service unavailable",
    "bad gateway",
    "no such host",
)


class PushError(BuildError):
    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class EngineUnavailable(BuildError):
    """The engine could not be reached or answered 5xx/429: worth another attempt."""


@dataclass(frozen=True)
class EnginePolicy:
    attempts: int = 4
    timeout: float = 600.0  # seconds without an answer (between stream chunks too)
    initial: float = 0.5
    max_wait: float = 4.0

    @classmethod
    def from_env(cls) -> EnginePolicy:
        try:
            attempts = int(os.environ.get(RETRIES_ENV, cls.attempts))
            timeout = float(os.environ.get(TIMEOUT_ENV, cls.timeout))
        except ValueError:
            raise BuildError(f"${RETRIES_ENV} must be a whole number and ${TIMEOUT_ENV} "
                             "a number of seconds") from None
        return cls(attempts=max(1, attempts), timeout=max(0.1, timeout))


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class Engine:
    """A connection to the Docker Engine; make one per thread."""

    def __init__(self, policy: EnginePolicy | None = None, log: LogFn | None = None) -> None:
        self.policy = policy or EnginePolicy.from_env()
        self.url = engine_url()
        self.api = self._retrying(self._connect, log)

    def _connect(self) -> docker.APIClient:
        with _engine_errors():
            return docker.APIClient(base_url=self.url, version="auto",
                                    timeout=self.policy.timeout)

    def build(
        self,
        context: IO[bytes],
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        log: LogFn,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Build and return the local image id; raise BuildError with the engine's message.

        `labels` are set on the image as `docker build --label` does.
        """
        start = context.tell()

        def once() -> str:
            context.seek(start)  # a retry sends the same context again
            return self._build_once(context, dockerfile, tag, build_args, log, labels or {})

        return self._retrying(once, log)

    def _build_once(self, context: IO[bytes], dockerfile: str, tag: str,
                    build_args: Mapping[str, str], log: LogFn,
                    labels: Mapping[str, str]) -> str:
        image_id = None
        with _engine_errors():
            for chunk in self.api.build(
                fileobj=context, custom_context=True, dockerfile=dockerfile, tag=tag,
                buildargs=dict(build_args), network_mode="host", pull=False, rm=True,
                forcerm=True, decode=True, labels=dict(labels),
            ):
                if "error" in chunk:
                    raise BuildError(f"docker build failed: {_short(chunk['error'])}")
                for line in str(chunk.get("stream", "")).splitlines():
                    if line.strip():
                        log(line.rstrip())
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = aux["ID"]
            if not image_id:
                image_id = self.api.inspect_image(tag)["Id"]
        return str(image_id)

    def run_test(self, image: str, argv: Sequence[str], log: LogFn, timeout: int = 1800) -> int:
        """Run `argv` in a throwaway container of `image`; return its exit code.

        The container has a name of its own, so it is removed even when the
        engine's answer to its creation was lost; a retry starts a fresh one.
        """
        name = f"mlops-test-{uuid.uuid4().hex[:12]}"
        try:
            return self._retrying(lambda: self._test_once(image, argv, log, timeout, name), log)
        finally:
            self._remove_container(name)

    def _test_once(self, image: str, argv: Sequence[str], log: LogFn, timeout: int,
                   name: str) -> int:
        self._remove_container(name)  # what an earlier attempt left
        with _engine_errors():
            self.api.create_container(
                image, name=name, entrypoint=list(argv[:1]), command=list(argv[1:]),
                host_config=self.api.create_host_config(network_mode="host"))
            self.api.start(name)
            shown = self._follow_logs(name, log)
            try:
                code = int(self.api.wait(name, timeout=timeout)["StatusCode"])
            except transport.READ_TIMEOUTS:
                raise BuildError(f"test command in {image} ran longer than {timeout}s") from None
            rest = self.api.logs(name, stream=False).split(b"\n")
        for line in rest[shown:]:
            if line.strip():
                log(line.decode("utf-8", "replace").rstrip("\r"))
        return code

    def _follow_logs(self, name: str, log: LogFn) -> int:
        """Show the test's output as it comes; stop following if it stays quiet too long."""
        shown, pending = 0, b""
        try:
            for raw in self.api.logs(name, stream=True, follow=True):
                *lines, pending = (pending + raw).split(b"\n")  # whole lines only
                for line in lines:
                    log(line.decode("utf-8", "replace").rstrip("\r"))
                    shown += 1
        except (*transport.READ_TIMEOUTS, TimeoutError):
            log(f"(no output for {self.policy.timeout:g}s; waiting for the test to end)")
        return shown  # the rest, a partial last line included, is shown after the test

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        def once() -> None:
            with _engine_errors():
                self.api.tag(image_id, repository, tag=tag, force=True)

        self._retrying(once)

    def push(self, repository: str, tag: str, log: LogFn) -> None:
        """Push one tag; errors the engine reports in-band raise PushError.

        The stream is closed on any error: the engine cancels a push whose
        client went away, instead of going on (and retrying) in the background.
        """
        try:
            with closing(self.api.push(repository, tag=tag, stream=True, decode=True)) as stream:
                for chunk in stream:
                    _push_progress(chunk, log)
        except (*transport.STALLED, TimeoutError):
            raise PushError(f"push failed: no progress from the Docker Engine in "
                            f"{self.policy.timeout:g}s (a slow registry?)",
                            transient=True) from None
        except (docker.errors.APIError, transport.RequestError) as exc:
            raise _push_error(_short(exc)) from None
        except (transport.Urllib3Error, ConnectionError) as exc:
            raise PushError(f"push failed: lost the Docker Engine: {_reason(exc)}",
                            transient=True) from None

    def _remove_container(self, name: str) -> None:
        try:
            self.api.remove_container(name, force=True)
        except (docker.errors.APIError, transport.RequestError, transport.Urllib3Error,
                ConnectionError, TimeoutError):
            pass  # best effort: gone already, or the engine is unreachable

    def _retrying(self, fn: Callable[[], T], log: LogFn | None = None) -> T:
        def note(attempt: int, exc: BaseException) -> None:
            if log is not None:
                log(f"retrying (attempt {attempt + 1} of {self.policy.attempts}): {exc}")

        try:
            return with_retries(fn, lambda exc: isinstance(exc, EngineUnavailable),
                                self.policy.attempts, self.policy.initial,
                                self.policy.max_wait, on_retry=note)
        except EngineUnavailable as exc:
            raise BuildError(f"Docker Engine at {redact(self.url)} unavailable after "
                             f"{self.policy.attempts} attempt(s): {exc}") from None


@contextmanager
def _engine_errors() -> Iterator[None]:
    """The SDK's and the connection's errors as BuildError or EngineUnavailable."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise BuildError(f"image not found: {_short(exc)}") from None
    except docker.errors.APIError as exc:
        if exc.status_code in RETRY_STATUSES:
            raise EngineUnavailable(f"HTTP {exc.status_code}") from None
        raise BuildError(f"docker: {_explanation(exc)}") from None
    except docker.errors.DockerException as exc:
        cause = exc.__cause__
        if cause is not None and _is_transient(cause):
            raise EngineUnavailable(_reason(cause)) from None
        raise BuildError(f"cannot use the Docker Engine: {_short(exc)}") from None
    except (transport.RequestError, transport.Urllib3Error, ConnectionError,
            TimeoutError) as exc:
        if _is_transient(exc):
            raise EngineUnavailable(_reason(exc)) from None
        raise BuildError(f"cannot use the Docker Engine: {_short(exc)}") from None


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, docker.errors.APIError):
        return exc.status_code in RETRY_STATUSES
    return isinstance(exc, (*transport.INTERRUPTED, transport.Urllib3Error, ConnectionError,
                            TimeoutError))


def _reason(exc: BaseException) -> str:
    """A short cause: 'connection refused', 'read timed out', 'HTTP 503', ..."""
    if isinstance(exc, docker.errors.APIError) and exc.status_code:
        return f"HTTP {exc.status_code}"
    text = str(exc).lower()
    for needle in ("connection refused", "connection reset", "timed out", "broken pipe",
                   "connection aborted", "connection broken", "remote end closed"):
        if needle in text:
            return "no answer within the timeout" if needle == "timed out" else needle
    return _short(exc)


def registry_credentials(host: str) -> tuple[str, str] | None:
    """Username and password for `host` from ~/.docker/config.json or its helpers."""
    try:
        config = docker.auth.load_config()
        auth = docker.auth.resolve_authconfig(config, registry=host)
    except docker.errors.DockerException:
        return None
    if not auth:
        return None
    user = auth.get("username") or auth.get("Username")
    password = auth.get("password") or auth.get("Password")
    return (user, password) if user and password else None


def _push_progress(chunk: Mapping, log: LogFn) -> None:
    if "error" in chunk:
        raise _push_error(str(chunk["error"]))
    status = chunk.get("status")
    if str(status).startswith("Retrying in"):
        # The engine's own retries (5, up to 50 s apart) would multiply ours.
        raise PushError(f"push failed: the registry failed the upload of layer "
                        f"{chunk.get('id', '?')}", transient=True)
    if status and not chunk.get("progressDetail"):
        log(f"{status} {chunk.get('id', '')}".strip())


def _push_error(message: str) -> PushError:
    lowered = message.lower()
    transient = any(h in lowered for h in TRANSIENT_PUSH_HINTS) and "denied" not in lowered
    return PushError(f"push failed: {_short(message)}", transient=transient)


def _explanation(exc: docker.errors.APIError) -> str:
    """The engine's own reason, not the SDK's first line (a long request URL, then
    'Bad Request'): e.g. 'dockerfile parse error on line 2: unknown instruction: FRM'."""
    reason = exc.explanation
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", errors="replace")
    return _short(reason) if isinstance(reason, str) and reason.strip() else _short(exc)


def _short(exc: object) -> str:
    text = redact(str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
