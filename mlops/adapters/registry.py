"""OCI registry adapter: the Distribution HTTP API, over `stdhttp`'s keep-alive session.

Transient failures (connection trouble, 5xx, 429) are retried with tenacity
backoff, bounded; auth failures and other 4xx are clear errors at once.
Credentials are passed in by the caller and never appear in messages.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from mlops.adapters import stdhttp
from mlops.adapters.retry import with_retries
from mlops.errors import RegistryError, TransientRegistryError
from mlops.records import dataclass
from mlops.redact import redact

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
RETRY_STATUSES = {429, 500, 502, 503, 504}
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"Credentials(username={self.username!r}, password='***')"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial: float = 0.2
    max_wait: float = 4.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """`MLOPS_REGISTRY_RETRIES` / `MLOPS_REGISTRY_TIMEOUT` tune it (tests, slow links)."""
        try:
            attempts = int(os.environ.get("MLOPS_REGISTRY_RETRIES", cls.attempts))
            timeout = float(os.environ.get("MLOPS_REGISTRY_TIMEOUT", cls.read_timeout))
        except ValueError:
            raise RegistryError("$MLOPS_REGISTRY_RETRIES must be a whole number and "
                                "$MLOPS_REGISTRY_TIMEOUT a number of seconds") from None
        return cls(attempts=max(1, attempts), read_timeout=max(0.1, timeout))


def is_loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1 : host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Registry:
    """One registry host; methods take repository paths like `mlops/train`."""

    def __init__(
        self,
        host: str,
        credentials: Credentials | None = None,
        policy: RetryPolicy | None = None,
        insecure: bool | None = None,
    ) -> None:
        self.host = host
        plain = is_loopback_host(host) if insecure is None else insecure
        self.base = f"{'http' if plain else 'https'}://{host}"
        self.credentials = credentials
        self.policy = policy or RetryPolicy.from_env()
        # Proxy settings would be re-read from the environment on every request;
        # loopback and in-cluster registries do not go through proxies here.
        self._session = stdhttp.Session(trust_env=not is_loopback_host(host))
        self._token: str | None = None

    # -- public API -------------------------------------------------------

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag or digest resolves to, or None if it does not exist.

        A GET, not a HEAD: the digest is the sha256 of the bytes served, checked
        against what the registry claims, so a lying registry cannot vouch for
        a digest it does not hold.
        """
        resp = self._call("GET", f"/v2/{repository}/manifests/{reference}", ok_missing=True)
        if resp is None:
            return None
        return self._verified(repository, reference, resp)

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        resp = self._call("GET", f"/v2/{repository}/manifests/{reference}")
        assert resp is not None
        self._verified(repository, reference, resp)
        return resp.content, resp.headers.get("Content-Type", "")

    def _verified(self, repository: str, reference: str, resp: stdhttp.Response) -> str:
        actual = "sha256:" + hashlib.sha256(resp.content).hexdigest()
        claimed = resp.headers.get("Docker-Content-Digest") or actual
        asked = reference if reference.startswith("sha256:") else actual
        if claimed != actual or asked != actual:
            raise RegistryError(
                f"registry {self.host} served a manifest for {repository}:{reference} whose "
                f"sha256 is {actual}, not the {asked if asked != actual else claimed} it claims"
            )
        return actual

    def put_manifest(self, repository: str, tag: str, body: bytes, media_type: str) -> str:
        resp = self._call(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            data=body,
            headers={"Content-Type": media_type},
        )
        assert resp is not None
        return resp.headers.get("Docker-Content-Digest", "")

    def tag(self, repository: str, source_ref: str, new_tags: list[str]) -> None:
        """Point more tags at an existing manifest, without pulling any layer."""
        body, media_type = self.get_manifest(repository, source_ref)
        for tag in new_tags:
            self.put_manifest(repository, tag, body, media_type)

    def tags(self, repository: str) -> list[str]:
        resp = self._call("GET", f"/v2/{repository}/tags/list", ok_missing=True)
        if resp is None:
            return []
        return list(resp.json().get("tags") or [])

    def ping(self) -> None:
        self._call("GET", "/v2/")

    # -- blobs ------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        return self._call("HEAD", f"/v2/{repository}/blobs/{digest}", ok_missing=True) is not None

    def put_blob(self, repository: str, data: bytes) -> str:
        """Upload `data` in one request (POST, then PUT ?digest=); a blob already there is kept.

        The registry checks the digest on the PUT, so a blob lands whole or not at
        all. A retried PUT whose first answer was lost meets a finished upload
        session; the blob being there then is the success it reports.
        """
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.blob_exists(repository, digest):
            return digest
        started = self._call("POST", f"/v2/{repository}/blobs/uploads/")
        location = self._upload_path(repository, started.headers.get("Location", ""))
        try:
            self._call("PUT", location, params={"digest": digest}, data=data,
                       headers={"Content-Type": "application/octet-stream"})
        except RegistryError:
            if not self.blob_exists(repository, digest):
                raise
        return digest

    def get_blob(self, repository: str, digest: str, max_bytes: int) -> bytes:
        """The blob's bytes, refused when larger than `max_bytes` or not hashing to `digest`."""
        path = f"/v2/{repository}/blobs/{digest}"

        def fetch() -> bytes:
            resp = self._once("GET", path, False, stream=True)
            with resp:
                return self._capped_body(resp, path, max_bytes)

        data = self._retry(fetch)
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise RegistryError(f"registry {self.host} served blob {repository}@{digest} "
                                f"whose sha256 is {actual}")
        return data

    def _upload_path(self, repository: str, location: str) -> str:
        """The upload session's path on this registry, from a relative or absolute Location.

        A Location on another host is refused rather than followed: the request
        would carry this registry's credentials there.
        """
        url = urljoin(self.base + f"/v2/{repository}/blobs/uploads/", location)
        parts, ours = urlsplit(url), urlsplit(self.base)
        if not location or (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc):
            raise RegistryError(f"registry {self.host} answered the upload of a blob to "
                                f"{repository} with an unusable Location "
                                f"({redact(location)[:100] or 'none'})")
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _capped_body(self, resp: stdhttp.Response, path: str, max_bytes: int) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise RegistryError(f"registry {self.host}: GET {path} is {declared} bytes, "
                                f"more than the {max_bytes} allowed")
        body = bytearray()
        try:
            for chunk in resp.iter_content(chunk_size=65536):
                body += chunk
                if len(body) > max_bytes:
                    raise RegistryError(f"registry {self.host}: GET {path} is more than "
                                        f"the {max_bytes} bytes allowed")
        except stdhttp.HTTPError as exc:
            raise TransientRegistryError(f"GET {path}: {_reason(exc)}") from None
        return bytes(body)

    # -- plumbing ---------------------------------------------------------

    def _call(self, method: str, path: str, ok_missing: bool = False, **kw: Any):
        return self._retry(lambda: self._once(method, path, ok_missing, **kw))

    def _retry(self, fn: Callable[[], T]) -> T:
        try:
            return with_retries(
                fn,
                lambda exc: isinstance(exc, TransientRegistryError),
                attempts=self.policy.attempts,
                initial=self.policy.initial,
                max_wait=self.policy.max_wait,
            )
        except TransientRegistryError as exc:
            raise RegistryError(
                f"registry {self.host} failed after {self.policy.attempts} attempts: {exc}"
            ) from None

    def _once(self, method: str, path: str, ok_missing: bool, **kw: Any):
        resp = self._send(method, path, **kw)
        if resp.status_code == 401 and self._authenticate(resp):
            resp = self._send(method, path, **kw)
        return self._check(resp, method, path, ok_missing)

    def _send(self, method: str, path: str, **kw: Any) -> stdhttp.Response:
        kw = dict(kw)  # retries call again with the same arguments
        headers = {"Accept": MANIFEST_TYPES, **kw.pop("headers", {})}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        auth = None
        if self.credentials and not self._token:
            auth = (self.credentials.username, self.credentials.password)
        timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        try:
            return self._session.request(
                method, self.base + path, headers=headers, auth=auth, timeout=timeout, **kw
            )
        except stdhttp.TooLarge as exc:
            raise RegistryError(f"registry {self.host}: {method} {path}: {exc}") from None
        except stdhttp.HTTPError as exc:
            raise TransientRegistryError(f"{method} {path}: {_reason(exc)}") from None

    def _check(self, resp: stdhttp.Response, method: str, path: str, ok_missing: bool):
        code = resp.status_code
        path = path.split("?", 1)[0]  # an upload session's query is state, not news
        if code < 300:
            return resp
        if code == 404 and ok_missing:
            return None
        if code in RETRY_STATUSES:
            raise TransientRegistryError(f"{method} {path}: HTTP {code}")
        if code in (401, 403):
            who = "with the configured credentials" if self.credentials else "anonymously"
            raise RegistryError(f"registry {self.host} denied {method} {path} {who} (HTTP {code})")
        raise RegistryError(
            f"registry {self.host}: {method} {path} -> HTTP {code}: {self._scrubbed(resp)}"
        )

    def _scrubbed(self, resp: stdhttp.Response) -> str:
        """The registry's error text as one redacted line: a registry (or a proxy in front
        of it) may repeat what it was sent, the password and token included, bare."""
        secrets = [self._token, self.credentials.password if self.credentials else None]
        return redact(" ".join(_error_text(resp).split()), secrets)[:300]

    def _authenticate(self, resp: stdhttp.Response) -> bool:
        """Follow a Bearer challenge; Basic needs nothing beyond the stored creds."""
        challenge = resp.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer") or self._token:
            return False
        if not _same_origin(resp.url, self.base):
            return False  # a host we were redirected to: it gets no credentials of ours
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm:
            return False
        if urlsplit(self.base).scheme == "https" and urlsplit(realm).scheme != "https":
            raise RegistryError(f"registry {self.host} sends its token requests to {realm!r}, "
                                "not https: mlops sends no credentials there in clear text")
        auth = (self.credentials.username, self.credentials.password) if self.credentials else None
        try:
            token_resp = self._session.get(realm, params=params, auth=auth, timeout=10)
        except stdhttp.HTTPError as exc:
            raise TransientRegistryError(f"token endpoint: {_reason(exc)}") from None
        if token_resp.status_code != 200:
            return False
        self._token = _token_from(token_resp, self.host)
        return True


def _same_origin(url: str, base: str) -> bool:
    got, ours = urlsplit(url), urlsplit(base)
    return (got.scheme, got.netloc) == (ours.scheme, ours.netloc)


def _token_from(resp: stdhttp.Response, host: str) -> str:
    """The bearer token of a token endpoint's answer, or one line saying what came instead."""
    try:
        body = resp.json()
    except (ValueError, RecursionError):
        body = None
    token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        got = "no JSON" if body is None else f"a JSON {type(body).__name__} without a token"
        raise RegistryError(f"registry {host}: its token endpoint answered {got}; expected a "
                            "JSON object with a 'token' (Docker registry token auth)")
    return token


def _reason(exc: Exception) -> str:
    text = str(exc)
    for needle in ("Connection refused", "Connection reset", "timed out", "Remote end closed"):
        if needle.lower() in text.lower():
            return needle.lower()
    return redact(text.splitlines()[0] if text else type(exc).__name__)[:200]


def _error_text(resp: stdhttp.Response) -> str:
    try:
        body = resp.json()
    except (ValueError, RecursionError):
        return resp.reason or "no details"
    errors = body.get("errors") if isinstance(body, dict) else None
    found = [f"{e.get('code')}: {e.get('message')}" for e in errors or []
             if isinstance(e, dict)] if isinstance(errors, list) else []
    return "; ".join(found) or resp.reason or "no details"
