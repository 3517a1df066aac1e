"""services.registries: one client per host for a run, and each digest asked for once.

Against the real registry: a manifest pushed under a tag, then the checks a
promotion makes. Requests are counted on the client's own HTTP session.
"""

from __future__ import annotations

import json

import pytest

from mlops import release as rel
from mlops.adapters.registry import Registry
from mlops.errors import RegistryError
from mlops.names import split_image
from mlops.services.registries import Registries, verify_digests

CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _push(host_ns: str, name: str, label: str) -> tuple[str, str]:
    """(image, digest) of a tiny manifest pushed as `image:tag-<label>`."""
    image = f"{host_ns}/{name}"
    host, repository = split_image(image)
    client = Registry(host)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {"l": label}}}).encode()
    digest = client.put_blob(repository, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [],
                           "config": {"mediaType": CONFIG, "size": len(config),
                                      "digest": digest}}).encode()
    return image, client.put_manifest(repository, f"tag-{label}", manifest, MANIFEST)


def _count_requests(regs: Registries, image: str) -> list[str]:
    session = regs.client(image)._session
    seen: list[str] = []
    real = session.request

    def counted(method, url, *args, **kwargs):
        seen.append(f"{method} {url.split('/v2/', 1)[1]}")
        return real(method, url, *args, **kwargs)

    session.request = counted
    return seen


def test_a_digest_proven_by_its_tag_is_not_asked_again(registry):
    _, ns = registry
    image, digest = _push(ns, "a", "one")
    _, other = _push(ns, "a", "two")
    regs = Registries()
    seen = _count_requests(regs, image)
    assert regs.served(image, "tag-one") == digest
    assert regs.has(image, digest) and len(seen) == 1  # the tag's GET proved it
    assert regs.has(image, other) and len(seen) == 2  # never proven: asked
    assert not regs.has(f"{ns}/b", digest)  # another repository: asked, and not there
    assert len(seen) == 3 and regs.client(f"{ns}/b") is regs.client(image)


def test_verify_digests_asks_once_per_image_and_refuses_a_missing_one(registry):
    _, ns = registry
    pushed = dict(_push(ns, n, "x") for n in ("a", "b", "c"))
    regs = Registries()
    seen = _count_requests(regs, next(iter(pushed)))
    images = {split_image(i)[1].rsplit("/", 1)[1]: rel.Image(i, d) for i, d in pushed.items()}
    release = rel.Release(source_commit="a" * 40, images=images)
    verify_digests(release, regs)
    verify_digests(release, regs)
    assert sorted(seen) == sorted(f"GET {split_image(i)[1]}/manifests/{d}"
                                  for i, d in pushed.items())
    missing = rel.Release(source_commit="a" * 40,
                          images={"d": rel.Image(f"{ns}/d", "sha256:" + "0" * 64)})
    with pytest.raises(RegistryError, match="is not in the registry; refusing to promote it"):
        verify_digests(missing, regs)


def test_prefetched_tags_are_asked_once_and_shared_with_later_callers(registry):
    _, ns = registry
    image, digest = _push(ns, "p", "one")
    regs = Registries()
    seen = _count_requests(regs, image)
    regs.prefetch([(image, "tag-one"), (image, "tag-one"), (image, "tag-none")])
    assert regs.served(image, "tag-one") == digest  # the prefetch's answer, maybe waited for
    assert regs.served(image, "tag-none") is None
    assert regs.has(image, digest)  # proven by the tag's hashed manifest
    assert sorted(seen) == [f"GET {split_image(image)[1]}/manifests/tag-none",
                            f"GET {split_image(image)[1]}/manifests/tag-one"]


def _one_try_client(registry, monkeypatch, name: str):
    """A pushed `name:tag-one`, and Registries making one try per request: (registries,
    image, digest, the requests seen, the client's session, its counting request)."""
    _, ns = registry
    image, digest = _push(ns, name, "one")
    monkeypatch.setenv("MLOPS_REGISTRY_RETRIES", "1")
    regs = Registries()
    seen = _count_requests(regs, image)
    session = regs.client(image)._session
    return regs, image, digest, seen, session, session.request


def test_a_failed_lookup_is_not_remembered(registry, monkeypatch):
    """A prefetch that fails hands its error to whoever waits, then asks again when called."""
    from mlops.adapters import stdhttp

    regs, image, digest, seen, session, counted = _one_try_client(registry, monkeypatch, "q")

    def refused_once(method, url, *args, **kwargs):
        session.request = counted
        counted(method, url, *args, **kwargs)  # seen, then lost on the way back
        raise stdhttp.Unreachable("connection reset")

    session.request = refused_once
    regs.prefetch([(image, "tag-one")])
    try:
        first = regs.served(image, "tag-one")  # joined the failing lookup, or came after it
    except RegistryError as exc:
        assert "connection reset" in str(exc)
        first = regs.served(image, "tag-one")
    assert first == digest and len(seen) == 2
    assert regs.served(image, "tag-one") == digest and len(seen) == 2


def test_a_prefetch_stops_asking_after_its_first_failure(monkeypatch):
    """A registry that is down (or refuses the credentials) is the caller's to report: the
    prefetch does not go on asking it for every other image meanwhile. The registry here is
    a port on 127.0.0.1 nothing listens on."""
    import threading

    from tests.support.services import free_port

    monkeypatch.setenv("MLOPS_REGISTRY_RETRIES", "1")
    image = f"127.0.0.1:{free_port()}/gone/s"
    regs = Registries()
    seen = _count_requests(regs, image)
    before = set(threading.enumerate())
    regs.prefetch([(image, f"tag-{n}") for n in range(6)], workers=1)
    # wait for the prefetch's own thread to end: then it has made every lookup it will make
    drains = [t for t in threading.enumerate()
              if t not in before and t.name.startswith("mlops-registry-")]
    for drain in drains:
        drain.join(timeout=30)
        assert not drain.is_alive(), "the prefetch is still asking after 30 s"
    assert seen == ["GET gone/s/manifests/tag-0"]
    with pytest.raises(RegistryError):
        regs.served(image, "tag-0")  # the caller asks for itself, and is refused
    assert len(seen) == 2
