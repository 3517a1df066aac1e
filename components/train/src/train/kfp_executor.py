"""Optional Kubeflow Pipelines v2 integration (identical in preprocess, train, evaluate).

The KFP backend registers a container component's output artifacts by
itself, but ``kfp.local`` only registers the artifacts listed in the task's
executor output file, and only that file can attach metadata (such as the
scalar metrics of a ``system.Metrics`` artifact, which the KFP UI shows).
Pass ``--executor-input`` the ``{{$}}`` placeholder
(``dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER``) and the program writes
that file, listing every output artifact, once its work has succeeded.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

METRICS_SCHEMA = "system.Metrics"


def parse_executor_input(text: str) -> dict:
    """argparse type for ``--executor-input``: the ExecutorInput message as JSON."""
    try:
        spec = json.loads(text)
        spec["outputs"]["outputFile"]
    except (ValueError, TypeError, KeyError) as exc:
        raise argparse.ArgumentTypeError(
            f"not a KFP ExecutorInput JSON with outputs.outputFile: {exc}") from exc
    return spec


def _artifact(artifact: Mapping, metrics: Mapping[str, float] | None) -> dict:
    metadata = dict(artifact.get("metadata") or {})
    if metrics and artifact.get("type", {}).get("schemaTitle") == METRICS_SCHEMA:
        metadata.update(metrics)
    return {"name": artifact.get("name", ""), "uri": artifact.get("uri", ""),
            "metadata": metadata}


def write_executor_output(spec: Mapping, metrics: Mapping[str, float] | None = None) -> Path:
    """Write the ExecutorOutput for all output artifacts; metrics go into the
    metadata of ``system.Metrics`` artifacts."""
    outputs = spec["outputs"]
    artifacts = {
        name: {"artifacts": [_artifact(a, metrics) for a in listed.get("artifacts", [])]}
        for name, listed in (outputs.get("artifacts") or {}).items()
    }
    path = Path(outputs["outputFile"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"artifacts": artifacts}, indent=2, sort_keys=True) + "\n")
    return path
