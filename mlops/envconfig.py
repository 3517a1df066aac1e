"""The `environments:` section of mlops.yaml: order, digest policy, gates, soak, approval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops import modeluri, names, schema
from mlops.adapters.yamlio import Located
from mlops.canaryconfig import Canary, read_canary
from mlops.errors import ConfigError
from mlops.schema import Key


def _k8s_name(value: Any, where: str) -> str:
    """A DNS-1123 label: what Kubernetes accepts as a namespace or object name."""
    text = schema.string(value, where)
    if not names.COMPONENT_NAME.match(text):
        raise ConfigError(f"{where}: {text!r} is not a Kubernetes name (lowercase letters, "
                          "digits and '-', at most 63 characters)")
    return text


def _env_name(value: Any, where: str) -> str:
    text = schema.string(value, where)
    problem = names.component_name_problem(text)
    if problem:
        raise ConfigError(f"{where} {problem}")
    return text


def _drop_fraction(value: Any, where: str) -> float:
    fraction = schema.finite_number(value, where)
    if not 0 <= fraction < 1:
        raise ConfigError(f"{where} must be a fraction of at least 0 and below 1 "
                          f"(0.05 allows a 5% drop), got {value!r}")
    return fraction


METRIC_GATE_KEYS: dict[str, Key] = {
    "metric": Key(schema.string, "Evaluation metric name (a key of metrics.json).", required=True),
    "threshold": Key(
        schema.finite_number, "Absolute bound: at least this (at most, if lower is better)."
    ),
    "min_absolute_change": Key(
        schema.finite_number,
        "Against the champion (the release now in the target environment): the candidate "
        "must beat it by at least this much, as in MLflow. Negative allows a bounded regression.",
    ),
    "min_relative_change": Key(
        schema.finite_number, "Like min_absolute_change, as a fraction of the champion's value."
    ),
    "max_relative_drop": Key(
        _drop_fraction,
        "Against the champion: the candidate may be worse by at most this fraction of the "
        "champion's value (0.05: 5%), in the direction greater_is_better says. A guardrail "
        "for a metric that must not regress much (latency, a secondary metric); unlike "
        "min_relative_change it does not ask for an improvement. At least 0, below 1.",
    ),
    "greater_is_better": Key(schema.boolean, "Direction of the metric.", default=True),
}

ENVIRONMENT_KEYS: dict[str, Key] = {
    "name": Key(_env_name, "Environment name; its overlay is environments/<name>/.", required=True),
    "require_digest": Key(
        schema.boolean, "Refuse any image reference that is not pinned by digest.", default=True
    ),
    "gates": Key(lambda v, w: v, "Metric gates a promotion into it must pass.", default=()),
    "soak": Key(
        schema.duration,
        "How long the release must have been in the previous environment (e.g. 2h).",
        default=0.0,
    ),
    "approval": Key(
        schema.boolean,
        "Promotion needs a signed approval by a release manager for this exact release. "
        "With a canary, the final promote to 100% needs it.",
        default=False,
    ),
    "service": Key(
        _k8s_name,
        "The InferenceService that serves the release's model (default: the only one in "
        "the overlay). Its STORAGE_URI gets the release's model URI; a canary splits it.",
    ),
    "namespace": Key(
        _k8s_name, "Kubernetes namespace the environment deploys to (default: its name)."
    ),
    "application": Key(
        _k8s_name, "Argo CD Application that syncs the overlay (default: mlops-<name>)."
    ),
    "canary": Key(
        lambda v, w: v, "Roll out as a KServe canary (see canary.*); only for serverless mode."
    ),
    "model_uri_schemes": Key(
        modeluri.schemes,
        "URI schemes a release's model URI may use to enter this environment's "
        "InferenceService (its storageUri), which KServe's storage initializer fetches in the "
        "cluster. Default: gs, s3, pvc, oci, hf, https. file:// and plain paths name files on "
        "the machine that ran mlops and are refused unless `file` is listed here.",
    ),
}


@dataclass(frozen=True)
class MetricGate:
    metric: str
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    max_relative_drop: float | None = None
    greater_is_better: bool = True


@dataclass(frozen=True)
class Environment:
    name: str
    require_digest: bool = True
    gates: tuple[MetricGate, ...] = ()
    soak: float = 0.0
    approval: bool = False
    service: str | None = None
    namespace: str | None = None
    application: str | None = None
    canary: Canary | None = None
    model_uri_schemes: tuple[str, ...] | None = None  # None: modeluri.DEFAULT_SCHEMES

    @property
    def k8s_namespace(self) -> str:
        return self.namespace or self.name

    @property
    def argocd_application(self) -> str:
        return self.application or f"mlops-{self.name}"

    @property
    def model_schemes(self) -> tuple[str, ...]:
        return self.model_uri_schemes or modeluri.DEFAULT_SCHEMES


def read_environments(doc: Located, node: Any) -> tuple[Environment, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        raise ConfigError(f"{doc.where(doc.data, 'environments')}: environments must be a list")
    envs = tuple(_environment(doc, item) for item in node)
    seen: set[str] = set()
    for i, env in enumerate(envs):
        if env.name in seen:
            raise ConfigError(f"{doc.where(node, i)}: environment {env.name!r} is listed twice")
        seen.add(env.name)
    return envs


def _environment(doc: Located, item: Any) -> Environment:
    values = schema.read_section(doc, item, ENVIRONMENT_KEYS, "environment")
    values["gates"] = _gates(doc, item.get("gates"), values["name"])
    values["canary"] = read_canary(doc, item.get("canary"), values["name"])
    return Environment(**values)


def _gates(doc: Located, node: Any, env: str) -> tuple[MetricGate, ...]:
    if node is None or node == ():
        return ()
    if not isinstance(node, list):
        raise ConfigError(f"{doc.where(node)}: gates of {env} must be a list")
    gates = []
    for item in node:
        values = schema.read_section(doc, item, METRIC_GATE_KEYS, f"a gate of {env}")
        if all(values[k] is None for k in ("threshold", "min_absolute_change",
                                           "min_relative_change", "max_relative_drop")):
            raise ConfigError(
                f"{doc.where(item)}: gate on {values['metric']!r} needs threshold, "
                "min_absolute_change, min_relative_change or max_relative_drop"
            )
        gates.append(MetricGate(**values))
    return tuple(gates)
