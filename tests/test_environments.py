"""This repository's own overlays render with kustomize and validate against the CRDs."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.support import crds

ENVIRONMENTS = ("dev", "staging", "prod")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overlay_renders_and_validates(env):
    proc = subprocess.run(["kubectl", "kustomize", str(REPO_ROOT / "environments" / env)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "InferenceService" in crds.validate_all(proc.stdout)


def test_inference_service_is_knative_and_uses_the_serve_component():
    isvc = yaml.safe_load((REPO_ROOT / "environments/base/inferenceservice.yaml").read_text())
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    container = isvc["spec"]["predictor"]["containers"][0]
    assert container["image"] == "serve"  # the overlay's images: entry pins it by digest
    assert "--model_dir=/mnt/models" in container["args"]
