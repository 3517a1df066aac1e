"""What `mlops validate` checks in an environment, as pure functions over parsed data.

Each check returns one-line problems; the command (`commands/validate.py`)
does the reading, rendering and compiling.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops import isvc
from mlops.names import is_digest_ref
from mlops.overlay import ImagePin
from mlops.release import EnvRecord


def resource_name(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name", "?") if isinstance(meta, Mapping) else "?"
    return f"{doc.get('kind', '?')} {name}"


def images_in(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, image) for every string under an `image` key, at any depth.

    Generic on purpose: containers, initContainers, KServe predictors and the
    executors inside a compiled PipelineVersion all name images this way.
    """
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "image" and isinstance(value, str):
                yield here, value
            else:
                yield from images_in(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from images_in(value, f"{path}[{i}]")


def unpinned_images(
    docs: Sequence[Mapping[str, Any]], env: str, placeholders: frozenset[str]
) -> list[str]:
    """Every image not pinned by digest, in an environment that requires digests.

    `placeholders` are the bare component names the base manifests use before
    an environment's first promotion pins them (`image: serve`); the caller
    passes them only for an environment that has no release yet.
    """
    found = []
    for doc in docs:
        for where, image in images_in(doc.get("spec")):
            if is_digest_ref(image) or image in placeholders:
                continue
            found.append(
                f"{resource_name(doc)}: spec.{where} is {image!r}, a mutable reference; "
                f"environment {env} requires images pinned by digest (promote a build into it)"
            )
    return found


def deployed_placeholders(
    docs: Sequence[Mapping[str, Any]], placeholders: frozenset[str], reason: str
) -> list[str]:
    """Each base placeholder (`image: serve`) left in an environment that Argo CD deploys.

    A placeholder is a bare component name: the cluster would pull
    `docker.io/library/<name>` and fail. `reason` says why the environment deploys.
    """
    return [f"{resource_name(doc)}: spec.{where} is the placeholder {image!r}, which no "
            f"cluster can pull; {reason}"
            for doc in docs for where, image in images_in(doc.get("spec"))
            if image in placeholders]


def release_disagreements(
    record: EnvRecord,
    pins: Mapping[str, ImagePin],
    compiled: Mapping[str, str],
) -> list[str]:
    """Where `release.yaml` and the overlay (image pins, compiled pipeline versions) differ."""
    release = record.release
    found = []
    for name, image in sorted(release.images.items()):
        pin = pins.get(name)
        if pin is None:
            found.append(f"release {release.id} pins {name} but the kustomization has no "
                         f"images: entry for it")
        elif (pin.new_name or name, pin.digest) != (image.image, image.digest):
            pinned = f"{pin.new_name or name}@{_short(pin.digest)}" if pin.digest else \
                f"{pin.new_name or name}:{pin.new_tag}"
            found.append(f"release {release.id} says {name} is {image.image}@"
                         f"{_short(image.digest)}, the kustomization pins {pinned}")
    for name in sorted(set(release.pipelines) | set(compiled)):
        want, have = release.pipelines.get(name), compiled.get(name)
        if want != have:
            found.append(f"release {release.id} says pipeline {name} is {want or 'absent'}, "
                         f"the overlay has {have or 'no compiled manifest'}")
    return found


def serving_disagreements(record: EnvRecord, docs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where a rendered InferenceService serves another model or release than `release.yaml`
    says: a hand-made patch in the overlay, which no gate or approval saw."""
    release = record.release
    found = []
    for service in isvc.services(docs):
        name = service.get("metadata", {}).get("name")
        served = isvc.storage_uri(service)
        if release.model_uri and served is not None and served != release.model_uri:
            found.append(f"release {release.id} serves model {release.model_uri}, but "
                         f"InferenceService {name} renders with {served}")
        mark = isvc.release_mark(service)
        if mark is not None and mark != release.id:
            found.append(f"release.yaml says release {release.id}, but InferenceService "
                         f"{name} renders with {isvc.RELEASE_ENV}={mark}")
    return found


def _short(digest: str) -> str:
    """Enough of a digest to tell two apart in one line."""
    return digest[:19] + "..."
