"""Rendering an overlay with `kubectl kustomize`, as Argo CD builds it before syncing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mlops.adapters import safeyaml
from mlops.errors import MlopsError

# kubectl logs errors through klog: 'E1123 08:52:38.421803   26510 run.go:72] "command failed"'
_KLOG_PREFIX = re.compile(r'^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] (?:"command failed" )?')
TIMEOUT = 120.0  # remote bases can make kustomize fetch; a hang must still end
# Rendering needs no cluster, but some kubectl builds ask one anyway: the Google Cloud
# SDK's version dispatcher sends GET /version to the kubeconfig's cluster (waiting ~5 s
# for one that does not answer) to pick a kubectl, even for `kubectl kustomize`. A
# kubeconfig whose current context does not exist leaves it nothing to ask.
_OFFLINE_KUBECONFIG = "apiVersion: v1\nkind: Config\ncurrent-context: mlops-render-offline\n"


class KustomizeError(MlopsError):
    """kubectl is missing, or the overlay does not render."""


def render(overlay_dir: Path, display: str | None = None) -> list[dict[str, Any]]:
    """The manifests `kubectl kustomize overlay_dir` prints, one dict per document.

    `display` names the overlay in errors when `overlay_dir` is a temporary clone's.
    """
    where = display or str(overlay_dir)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KustomizeError(f"kubectl not found on PATH; it renders {where}")
    try:
        proc = _kustomize(kubectl, overlay_dir)
    except subprocess.TimeoutExpired:
        raise KustomizeError(f"kubectl kustomize {where} took over {TIMEOUT:.0f}s") from None
    if proc.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {where} failed: {_first_line(proc.stderr)}")
    try:
        docs = safeyaml.unchecked_load_all(proc.stdout)  # libyaml: a render is megabytes
    except safeyaml.YAMLError as exc:
        raise KustomizeError(f"kubectl kustomize {where} printed invalid YAML: "
                             f"{_first_line(str(exc))}") from None
    return [doc for doc in docs if isinstance(doc, dict)]


def _kustomize(kubectl: str, overlay_dir: Path) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", prefix="mlops-kubeconfig-", suffix=".yaml") as kc:
        kc.write(_OFFLINE_KUBECONFIG)
        kc.flush()
        return subprocess.run([kubectl, "kustomize", str(overlay_dir)], capture_output=True,
                              text=True, timeout=TIMEOUT, env={**os.environ, "KUBECONFIG": kc.name})


def _first_line(text: str) -> str:
    """The error as one line: klog wraps multi-line errors as `err=<` ... `>`."""
    lines = [_KLOG_PREFIX.sub("", line.strip()) for line in text.splitlines() if line.strip()]
    joined = " ".join(lines).removeprefix("err=").strip('<>" ')
    return joined[:300] if joined else "no output"
