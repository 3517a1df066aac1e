"""CRD schemas: the only user of jsonschema.

A CustomResourceDefinition holds an `openAPIV3Schema` per served version.
`mlops validate --crds DIR` checks every rendered resource whose apiVersion
and kind one of the CRDs in DIR defines, offline, as the API server would on
apply. Kinds no CRD in DIR defines are counted, not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from mlops.adapters import safeyaml
from mlops.errors import UsageError
from mlops.records import dataclass


@dataclass(frozen=True)
class Schemas:
    folder: str
    by_kind: Mapping[tuple[str, str], Mapping[str, Any]]  # (apiVersion, kind) -> schema

    def covers(self, doc: Mapping[str, Any]) -> bool:
        return (doc.get("apiVersion"), doc.get("kind")) in self.by_kind


def load(folder: Path) -> Schemas:
    """Every served version of every CRD in `folder`'s *.yaml / *.yml / *.json files."""
    if not folder.is_dir():
        raise UsageError(f"--crds {folder}: no such directory")
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".json")):
        for doc in _documents(path):
            found.update(_schemas_of(doc))
    if not found:
        raise UsageError(f"--crds {folder}: no CustomResourceDefinition with a schema in it")
    return Schemas(str(folder), found)


def _documents(path: Path) -> list[Any]:
    try:
        return safeyaml.unchecked_load_all(path.read_text())  # CRDs are megabytes of YAML
    except (safeyaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not valid YAML ({first})") from None


def _schemas_of(doc: Any) -> dict[tuple[str, str], Mapping[str, Any]]:
    if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
        return {}
    spec = doc.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    found = {}
    for version in spec.get("versions") or []:
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if group and kind and schema:
            found[(f"{group}/{version['name']}", kind)] = schema
    return found


def problems(schemas: Schemas, doc: Mapping[str, Any]) -> list[str]:
    """What is wrong with `doc` by its CRD's schema, one line each (at most three)."""
    schema = schemas.by_kind[(doc["apiVersion"], doc["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [_one_line(e) for e in errors[:3]]


def _one_line(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{where}: {message}"
