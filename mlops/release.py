"""Releases and the per-environment record `environments/<env>/release.yaml`.

A release is the immutable bundle that moves dev -> staging -> prod: the
source commit, each component's image digest, the compiled pipeline
versions, the model URI and the evaluation metrics. Its id is a hash of that
content. What happened on the way (gate results, the approval, a hold) is
recorded per environment beside it, outside the id.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from mlops.adapters import safeyaml
from mlops.errors import ConfigError
from mlops.names import COMMIT, DIGEST, image_problem
from mlops.records import dataclass, field

KIND = "Release"
API_VERSION = "mlops.dev/v1"
RELEASE_FILE = "release.yaml"
HEADER = "# Written by `mlops promote`, `rollback` and `rollout`. Do not edit by hand.\n"


@dataclass(frozen=True)
class Image:
    image: str  # repository, without tag or digest
    digest: str

    @property
    def ref(self) -> str:
        return f"{self.image}@{self.digest}"


@dataclass(frozen=True)
class Release:
    source_commit: str | None
    images: Mapping[str, Image]
    pipelines: Mapping[str, str] = field(default_factory=dict)
    model_uri: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The release's own copies: the digest is computed once (a promotion asks for the
        # id a dozen times, 4 ms each at 1,000 images), so a caller that goes on editing
        # the dicts it passed must not change the content under it. (Plain dicts, not
        # read-only views: records are pickled, deep-copied and dumped as dicts.)
        for name in ("images", "pipelines", "metrics"):
            object.__setattr__(self, name, dict(getattr(self, name)))

    def content(self) -> dict[str, Any]:
        return {
            "source_commit": self.source_commit,
            "images": {
                name: {"image": img.image, "digest": img.digest}
                for name, img in sorted(self.images.items())
            },
            "pipelines": dict(sorted(self.pipelines.items())),
            "model_uri": self.model_uri,
            "metrics": {k: _json_number(v) for k, v in sorted(self.metrics.items())},
        }

    @property
    def digest(self) -> str:
        """`sha256:<64 hex>` of the content: what an approval binds to (`mlops approve`)."""
        known = self.__dict__.get("_digest")  # not a field: outside equality and repr
        if known is None:
            canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
            known = self.__dict__["_digest"] = (
                "sha256:" + hashlib.sha256(canonical.encode()).hexdigest())
        return str(known)

    @property
    def id(self) -> str:
        """The digest's first 12 hex digits, for people: 48 bits, so two releases can share
        one on purpose (a birthday search); nothing that grants trust may go by it alone."""
        return "r-" + self.digest.removeprefix("sha256:")[:12]

    def image_refs(self) -> dict[str, str]:
        return {name: img.ref for name, img in self.images.items()}


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class EnvRecord:
    """What `release.yaml` says about one environment."""

    environment: str
    release: Release
    promoted_from: str  # an environment name, or "build"
    gates: tuple[Mapping[str, Any], ...] = ()
    approval: Mapping[str, Any] | None = None
    hold: Mapping[str, Any] | None = None
    # A KServe canary in progress or finished: {state: canary|complete|aborted,
    # percent, step, steps, baseline (the stable release id)}. None outside rollouts.
    rollout: Mapping[str, Any] | None = None


def render(record: EnvRecord) -> str:
    doc = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "id": record.release.id,
        "environment": record.environment,
        "promoted_from": record.promoted_from,
        **record.release.content(),
        "gates": [dict(g) for g in record.gates],
        "approval": dict(record.approval) if record.approval else None,
        "hold": dict(record.hold) if record.hold else None,
    }
    if record.rollout:
        doc["rollout"] = dict(record.rollout)
    return HEADER + safeyaml.dump(doc)


def parse(text: str, display: str) -> EnvRecord:
    doc = safeyaml.load(text, display)  # no aliases: a bomb here would hang every command
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ConfigError(f"{display}: not an mlops release record")
    try:
        _check_shape(doc)
        release = Release(
            source_commit=doc.get("source_commit"),
            images={n: _image(n, v, display) for n, v in (doc.get("images") or {}).items()},
            pipelines={str(k): str(v) for k, v in (doc.get("pipelines") or {}).items()},
            model_uri=doc.get("model_uri"),
            metrics={str(k): float(v) for k, v in (doc.get("metrics") or {}).items()},
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{display}: malformed release record ({exc})") from None
    if doc.get("id") != release.id:
        raise ConfigError(
            f"{display}: id {doc.get('id')!r} does not match its content ({release.id}); "
            "the file was edited by hand"
        )
    return EnvRecord(
        environment=str(doc.get("environment", "")),
        release=release,
        promoted_from=str(doc.get("promoted_from", "")),
        gates=tuple(doc.get("gates") or ()),
        approval=doc.get("approval"),
        hold=doc.get("hold"),
        rollout=doc.get("rollout"),
    )


def _check_shape(doc: Mapping[str, Any]) -> None:
    """Types the commands rely on, so a hand-edited record fails here, in one line."""
    for key in ("source_commit", "model_uri"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise TypeError(f"{key} must be a string")
    commit = doc.get("source_commit")
    if commit is not None and not COMMIT.match(commit):
        raise ValueError(f"source_commit {commit!r} is not a commit id")
    for key in ("images", "pipelines", "metrics", "approval", "hold", "rollout"):
        if doc.get(key) is not None and not isinstance(doc[key], Mapping):
            raise TypeError(f"{key} must be a mapping")
    gates = doc.get("gates") or []
    if not isinstance(gates, list) or not all(isinstance(g, Mapping) for g in gates):
        raise TypeError("gates must be a list of mappings")


def _image(name: str, value: Any, display: str) -> Image:
    if not isinstance(value, Mapping) or not DIGEST.match(str(value.get("digest", ""))):
        raise ConfigError(f"{display}: image {name!r} needs an image and a sha256 digest")
    problem = image_problem(value.get("image"))
    if problem:
        raise ConfigError(f"{display}: image of {name!r} {problem}")
    return Image(str(value["image"]), str(value["digest"]))
