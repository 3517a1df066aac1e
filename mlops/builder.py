"""Docker Engine adapter: the only importer of the docker SDK.

Builds from a prepared context, runs a component's test command in the fresh
image, tags and pushes, and reads registry credentials from the usual Docker
config. Push errors that the engine reports inside the stream become errors
here, split into transient (retry) and permanent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import IO

import docker
import docker.auth
import docker.errors
import requests

from mlops.errors import BuildError
from mlops.redact import redact

LogFn = Callable[[str], None]

TRANSIENT_PUSH_HINTS = (
    "connection refused",
    "connection reset",
    "broken pipe",
    "eof",
    "i/o timeout",
    "timeout",
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


class Engine:
    """A connection to the Docker Engine; make one per thread."""

    def __init__(self, timeout: int = 600) -> None:
        try:
            self.api = docker.APIClient(
                base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                version="auto",
                timeout=timeout,
            )
        except docker.errors.DockerException as exc:
            raise BuildError(f"cannot reach the Docker Engine: {_short(exc)}") from None

    def build(
        self,
        context: IO[bytes],
        dockerfile: str,
        tag: str,
        build_args: Mapping[str, str],
        log: LogFn,
    ) -> str:
        """Build and return the local image id; raise BuildError with the engine's message."""
        image_id = None
        stream = self._call(
            self.api.build,
            fileobj=context,
            custom_context=True,
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(build_args),
            network_mode="host",
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise BuildError(f"docker build failed: {_short(chunk['error'])}")
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    log(line.rstrip())
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
        if not image_id:
            image_id = self._call(self.api.inspect_image, tag)["Id"]
        return str(image_id)

    def run_test(self, image: str, argv: Sequence[str], log: LogFn, timeout: int = 1800) -> int:
        """Run `argv` in a throwaway container of `image`; return its exit code."""
        container = self._call(
            self.api.create_container,
            image,
            entrypoint=list(argv[:1]),
            command=list(argv[1:]),
            host_config=self.api.create_host_config(network_mode="host"),
        )
        cid = container["Id"]
        try:
            self._call(self.api.start, cid)
            for raw in self.api.logs(cid, stream=True, follow=True):
                for line in raw.decode("utf-8", "replace").splitlines():
                    log(line)
            return int(self._call(self.api.wait, cid, timeout=timeout)["StatusCode"])
        except requests.exceptions.ReadTimeout:
            raise BuildError(f"test command in {image} ran longer than {timeout}s") from None
        finally:
            self._remove_container(cid)

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        self._call(self.api.tag, image_id, repository, tag=tag, force=True)

    def push(self, repository: str, tag: str, log: LogFn) -> None:
        """Push one tag; errors the engine reports in-band raise PushError."""
        try:
            stream = self.api.push(repository, tag=tag, stream=True, decode=True)
            for chunk in stream:
                if "error" in chunk:
                    raise _push_error(str(chunk["error"]))
                status = chunk.get("status")
                if status and not chunk.get("progressDetail"):
                    log(f"{status} {chunk.get('id', '')}".strip())
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise _push_error(_short(exc)) from None

    def _remove_container(self, cid: str) -> None:
        try:
            self.api.remove_container(cid, force=True)
        except docker.errors.APIError:
            pass  # best effort cleanup; the container already stopped

    @staticmethod
    def _call(fn: Callable, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except docker.errors.ImageNotFound as exc:
            raise BuildError(f"image not found: {_short(exc)}") from None
        except docker.errors.APIError as exc:
            raise BuildError(f"docker: {_short(exc)}") from None
        except (requests.ConnectionError, docker.errors.DockerException) as exc:
            raise BuildError(f"cannot reach the Docker Engine: {_short(exc)}") from None


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


def _push_error(message: str) -> PushError:
    lowered = message.lower()
    transient = any(h in lowered for h in TRANSIENT_PUSH_HINTS) and "denied" not in lowered
    return PushError(f"push failed: {_short(message)}", transient=transient)


def _short(exc: object) -> str:
    text = redact(str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
