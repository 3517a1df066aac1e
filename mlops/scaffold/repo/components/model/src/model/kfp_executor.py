"""Kubeflow Pipelines' executor output, for `--executor-input {{$}}`.

`kfp.local` (and so `mlops run --local`) registers a container component's
output artifacts only from the file named in the ExecutorInput's
`outputs.outputFile`; the KFP backend finds them without it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path


def parse(text: str) -> dict:
    """argparse type: the ExecutorInput message as JSON."""
    try:
        spec = json.loads(text)
        spec["outputs"]["outputFile"]
    except (ValueError, TypeError, KeyError) as exc:
        raise argparse.ArgumentTypeError(
            f"not a KFP ExecutorInput with outputs.outputFile: {exc}") from exc
    return spec


def write_output(spec: Mapping) -> Path:
    """List every output artifact in the executor output file."""
    outputs = spec["outputs"]
    artifacts = {
        name: {"artifacts": [{"name": a.get("name", ""), "uri": a.get("uri", ""),
                              "metadata": a.get("metadata") or {}}
                             for a in listed.get("artifacts", [])]}
        for name, listed in (outputs.get("artifacts") or {}).items()
    }
    path = Path(outputs["outputFile"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"artifacts": artifacts}, indent=2, sort_keys=True) + "\n")
    return path
