"""Validate manifests against the upstream CRD schemas in ../shared/crds/.

Each CRD file holds an `openAPIV3Schema` per served version; a manifest is
checked against the one for its apiVersion and kind. The product never reads
this folder; only tests (and `mlops validate --crds DIR`) do.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes of YAML
CRDS = Path(__file__).resolve().parents[2].parent / "shared" / "crds"


@functools.cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, for every CRD file present."""
    from tests.support.services import require

    require(CRDS.is_dir() and any(CRDS.glob("*.yaml")), f"CRD schemas not found in {CRDS}")
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(), Loader=_LOADER):  # noqa: S506 - safe
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema:
                    found[(f"{group}/{version['name']}", kind)] = schema
    return found


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
