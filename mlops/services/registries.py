"""Registry access for commands and services: a lazily created client per registry host,
and the checks promotion makes there (digests served, tags bound).

The registry adapter (`mlops.adapters.registry`, and requests with it) is imported
only when a client is first used: a build plan answered from the local cache,
or a dry run, never pays for it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from mlops.errors import RegistryError
from mlops.names import split_image
from mlops.records import dataclass
from mlops.threadmap import thread_map

if TYPE_CHECKING:  # a build plan imports this module: neither PyYAML nor the registry for it
    from mlops import release as rel
    from mlops.adapters.registry import Registry


@dataclass(frozen=True)
class Lookup:
    """What the registry said about one tag: its digest (None: not there), or an error."""

    digest: str | None
    source: str
    error: str | None = None


class RegistryAccess:
    """A lazily created registry client for the configured host."""

    def __init__(self, registry: str) -> None:
        self.host, _ = split_image(registry + "/x")
        self._client: Registry | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Registry:
        with self._lock:
            if self._client is None:
                # Imported here: requests and docker cost ~0.3 s, and a plan
                # answered from the local cache needs neither.
                from mlops.adapters.registry import Credentials, Registry

                creds = _credentials(self.host)
                self._client = Registry(self.host, Credentials(*creds) if creds else None)
            return self._client

    def lookup(self, image: str, tag: str) -> Lookup:
        try:
            return Lookup(self.client.manifest_digest(split_image(image)[1], tag), "")
        except RegistryError as exc:
            return Lookup(None, "", error=str(exc))


def _credentials(host: str) -> tuple[str, str] | None:
    """Docker-config credentials; the docker SDK is loaded only if a config exists."""
    import os
    from pathlib import Path

    folder = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    if not (Path(folder) / "config.json").is_file():
        return None
    from mlops.adapters.builder import registry_credentials

    return registry_credentials(host)


class _Answer:
    """One lookup's outcome, waited for by whoever asks while it is on its way.

    (Not concurrent.futures.Future: a build plan imports this module and must not
    pay for that package.)
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self._digest: str | None = None
        self._error: BaseException | None = None

    def settle(self, digest: str | None = None, error: BaseException | None = None) -> None:
        self._digest, self._error = digest, error
        self._done.set()

    def result(self) -> str | None:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._digest


class Registries:
    """The registry clients of one command run, one per host, and what their GETs proved.

    One client per host means one HTTP session: its connections stay open from
    the build record's tag checks through the digest checks to provenance.
    A manifest fetched by tag and hashed to its digest proves that digest is in
    that repository; the digest check of the same image later in the run is
    answered from that proof instead of asking again.
    """

    def __init__(self) -> None:
        self._hosts: dict[str, RegistryAccess] = {}
        self._proven: set[tuple[str, str]] = set()
        self._asked: dict[tuple[str, str], _Answer] = {}  # (image, tag) -> the registry's answer
        self._lock = threading.Lock()

    def client(self, image: str) -> Registry:
        with self._lock:
            access = self._hosts.setdefault(split_image(image)[0], RegistryAccess(image))
        return access.client

    def served(self, image: str, tag: str) -> str | None:
        """The digest the registry serves for `image:tag` (hash-verified), or None.

        Asked once per run: a second caller, also one that comes while the first
        is waiting for the registry, gets the first answer. A failure is handed to
        whoever waits for it and then forgotten, so that a later call asks again.
        """
        key = (image, tag)
        with self._lock:
            asked = self._asked.get(key)
            if asked is None:
                answer = self._asked[key] = _Answer()
        if asked is not None:
            return asked.result()
        self._ask(key, answer)
        return answer.result()

    def _ask(self, key: tuple[str, str], answer: _Answer) -> None:
        image, tag = key
        try:
            digest = self.client(image).manifest_digest(split_image(image)[1], tag)
        except BaseException as exc:  # noqa: BLE001  handed to every waiter by result()
            with self._lock:
                self._asked.pop(key, None)
            answer.settle(error=exc)
            return
        if digest is not None:
            self._proven.add((image, digest))
        answer.settle(digest)

    def prefetch(self, lookups: Iterable[tuple[str, str]], workers: int = 8) -> None:
        """Start asking for each (image, tag) now; `served` then answers from it.

        A promotion knows the build record's lookups before its checkout of the
        remote is ready, so the registry's round trips overlap the clone. The
        threads are daemons: a promotion that fails first does not wait for them.
        After the first failed lookup they ask nothing more: a registry that is down
        or refuses the credentials is the caller's to report, once.
        """
        keys = list(dict.fromkeys(lookups))
        pending = deque(keys)  # popleft is atomic: the threads share it without a lock
        failed = threading.Event()  # a registry that fails once is left to the caller

        def drain() -> None:
            while not failed.is_set():
                try:
                    key = pending.popleft()
                except IndexError:
                    return
                try:
                    self.served(*key)
                except BaseException:  # noqa: BLE001  the caller that needs it asks again
                    failed.set()

        for n in range(min(workers, len(keys))):
            threading.Thread(target=drain, name=f"mlops-registry-{n}", daemon=True).start()

    def has(self, image: str, digest: str) -> bool:
        """Whether `image@digest` is in the registry: proven earlier in the run, or asked."""
        if (image, digest) in self._proven:
            return True
        return self.served(image, digest) is not None


def registry_clients():
    """image -> a registry client for its host, one per host (used from threads)."""
    return Registries().client


def served_digests() -> Callable[[str, str], str | None]:
    """(image, tag) -> the digest the registry serves (hash-verified)."""
    return Registries().served


def verify_digests(release: rel.Release, registries: Registries | None = None) -> None:
    """Every image digest must exist in its registry before anything is committed."""
    regs = registries or Registries()

    def present(item: tuple[str, rel.Image]) -> tuple[str, rel.Image, bool]:
        name, img = item
        return name, img, regs.has(img.image, img.digest)

    results = thread_map(present, sorted(release.images.items()), workers=8)
    for name, img, found in results:
        if not found:
            raise RegistryError(
                f"component {name}: {img.ref} is not in the registry; refusing to promote it"
            )
