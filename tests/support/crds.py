"""Validate manifests against the upstream CRD schemas in ../shared/crds/ and tests/data/crds/.

Each CRD file holds an `openAPIV3Schema` per served version; a manifest is
checked against the one for its apiVersion and kind. The product never reads
these folders; only tests (and `mlops validate --crds DIR`) do. tests/data/crds/
holds CRDs vendored into this repository, each with its source and commit in a
header comment (KFP's ScheduledWorkflow).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlops.adapters import crds

CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "crds"
VENDORED = Path(__file__).resolve().parents[1] / "data" / "crds"


@functools.cache
def schemas() -> Mapping[tuple[str, str], Mapping[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, read by the product's own loader."""
    from tests.support.services import require

    require(CRDS.is_dir() and any(CRDS.glob("*.yaml")), f"CRD schemas not found in {CRDS}")
    return {**crds.load(CRDS).by_kind, **crds.load(VENDORED).by_kind}


def validate(manifest: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError (or KeyError for an unknown kind)."""
    schema = schemas()[(manifest["apiVersion"], manifest["kind"])]
    jsonschema.Draft7Validator(schema).validate(manifest)


def validate_all(text: str) -> list[str]:
    """Validate every document with a known CRD; return the kinds checked."""
    checked = []
    for doc in yaml.safe_load_all(text):
        if doc and (doc.get("apiVersion"), doc.get("kind")) in schemas():
            validate(doc)
            checked.append(doc["kind"])
    return checked
