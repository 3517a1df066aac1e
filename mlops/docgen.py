"""The configuration reference (docs/configuration.md), generated from the key tables.

`python3 -m mlops.docgen > docs/configuration.md` regenerates it; a test keeps
the committed file equal to this output, so the docs cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlops.canaryconfig import ANALYSIS_KEYS, ANALYSIS_METRIC_KEYS, CANARY_KEYS
from mlops.components import COMPONENT_KEYS
from mlops.config import (
    APPROVAL_KEYS,
    ARGOCD_KEYS,
    BUILD_KEYS,
    CONFIG_KEYS,
    GIT_KEYS,
    PROMETHEUS_KEYS,
    REGISTRY_ENV,
    TRACKING_KEYS,
)
from mlops.envconfig import ENVIRONMENT_KEYS, METRIC_GATE_KEYS, SCHEDULE_KEYS
from mlops.schema import Key

SECTIONS: list[tuple[str, str, Mapping[str, Key]]] = [
    ("mlops.yaml", "Top-level keys of `mlops.yaml` at the repository root.", CONFIG_KEYS),
    ("build", "`build:` in mlops.yaml.", BUILD_KEYS),
    ("environments[]", "Each item of `environments:`, in the order releases move.",
     ENVIRONMENT_KEYS),
    ("environments[].gates[]", "Each metric gate of an environment; fails closed.",
     METRIC_GATE_KEYS),
    ("environments[].canary", "A KServe canary rollout of the environment's InferenceService.",
     CANARY_KEYS),
    ("environments[].canary.analysis", "The live analysis that gates each step.", ANALYSIS_KEYS),
    ("environments[].canary.analysis.metrics[]",
     "Each check on a Prometheus metric. No data or too little traffic never passes.",
     ANALYSIS_METRIC_KEYS),
    ("environments[].schedules[]",
     "Each recurring run of a pipeline in the environment: a Kubeflow Pipelines "
     "ScheduledWorkflow in environments/<env>/schedules/ (see "
     "[Continuous training](continuous-training.md)).", SCHEDULE_KEYS),
    ("prometheus", "`prometheus:` in mlops.yaml.", PROMETHEUS_KEYS),
    ("argocd", "`argocd:` in mlops.yaml.", ARGOCD_KEYS),
    ("tracking", "`tracking:` in mlops.yaml: MLflow, where a team uses it.", TRACKING_KEYS),
    ("approvals", "`approvals:` in mlops.yaml.", APPROVAL_KEYS),
    ("git", "`git:` in mlops.yaml.", GIT_KEYS),
    ("component.yaml", "`components/<name>/component.yaml`.", COMPONENT_KEYS),
]


def _default(key: Key) -> str:
    if key.required:
        return "required"
    if key.default in (None, (), {}, ""):
        return "—"
    if isinstance(key.default, bool):
        return str(key.default).lower()
    return f"`{key.default}`"


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the key tables in `mlops/` by `python3 -m mlops.docgen`; "
        "a test fails when this file and the code disagree.",
        "",
        f"`${REGISTRY_ENV}` overrides `registry`. Unknown keys are errors that name the "
        "nearest valid key. Paths are relative to the repository root and may not "
        "contain `..`. Durations are written like `30s`, `15m`, `2h` or `1d`.",
    ]
    for title, intro, keys in SECTIONS:
        out += ["", f"## `{title}`", "", intro, "", "| key | default | meaning |",
                "|---|---|---|"]
        out += [f"| `{name}` | {_default(key)} | {key.doc} |" for name, key in keys.items()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
