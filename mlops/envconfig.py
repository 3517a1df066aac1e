"""The `environments:` section of mlops.yaml: order, digest policy, gates, soak, approval,
schedules."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from mlops import modeluri, names, schema
from mlops.adapters.yamlio import Located
from mlops.canaryconfig import Canary, read_canary
from mlops.core import cron
from mlops.errors import ConfigError
from mlops.records import dataclass, field
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


def _cron(value: Any, where: str) -> str:
    try:
        return cron.to_kfp(schema.string(value, where))
    except cron.CronError as exc:
        raise ConfigError(f"{where} {value!r} {exc.message}") from None


def _interval(value: Any, where: str) -> int:
    seconds = schema.duration(value, where)
    if seconds < 1 or seconds != int(seconds):
        raise ConfigError(f"{where} must be a whole number of seconds, at least 1s, got {value!r}")
    return int(seconds)


def _max_concurrency(value: Any, where: str) -> int:
    number = schema.positive_int(value, where)
    if number > 10:  # KFP's controller clamps to 1-10 (util/scheduled_workflow.go)
        raise ConfigError(f"{where} must be at most 10 (Kubeflow Pipelines' limit), got {number}")
    return number


def _parameters(value: Any, where: str) -> dict[str, Any]:
    """Parameter name -> a JSON value: what KFP's controller parses each value as."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of parameter names to values")
    out = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: parameter names must be strings, got {name!r}")
        out[name] = _json_value(item, f"{where}: {name}")
    return out


def _json_value(value: Any, where: str) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):  # ruamel's scalar subclasses become plain values
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number")
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v, where) for v in value]
    raise ConfigError(f"{where} must be a string, number, boolean, list or mapping "
                      f"(quote dates and times), got {type(value).__name__}")


SCHEDULE_KEYS: dict[str, Key] = {
    "name": Key(
        _k8s_name,
        "Name of the ScheduledWorkflow and of its file environments/<env>/schedules/<name>.yaml; "
        "unique in the environment. Default: the pipeline's Kubernetes name.",
    ),
    "pipeline": Key(
        schema.string,
        "Pipeline to run, as `mlops compile` names it (pipelines/<pipeline>.py). Runs the "
        "environment's current PipelineVersion of it: a promotion moves the schedule along.",
        required=True,
    ),
    "cron": Key(
        _cron,
        "When to run: 5 fields (a crontab line: minute hour day-of-month month day-of-week), "
        "6 fields with seconds first (as Kubeflow Pipelines reads them), or @hourly, @daily, "
        "@weekly, @monthly, @yearly. Five fields get a leading 0 seconds field, since KFP "
        "would read `0 2 * * *` as minute 2 of every hour. Times are in the controller's "
        "zone (CRON_SCHEDULE_TIMEZONE). Give exactly one of cron and interval.",
    ),
    "interval": Key(
        _interval,
        "Run every this long: whole seconds, or a duration like 6h (a KFP periodic schedule).",
    ),
    "parameters": Key(
        _parameters,
        "Pipeline parameters for each run; every key must be a parameter the pipeline "
        "declares, with a value of its type. Strings may use KFP's run macros "
        "[[CurrentTime]] and [[RunUUID]], which its API server fills in for each run.",
        default={},
    ),
    "max_concurrency": Key(
        _max_concurrency, "Runs of this schedule that may be active at once (1-10).", default=1
    ),
    "catchup": Key(
        schema.boolean,
        "After a pause or an outage, run every missed interval (true, KFP's default) or only "
        "the latest (false).",
        default=True,
    ),
    "enabled": Key(schema.boolean, "Whether the schedule starts runs.", default=True),
}

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
        _k8s_name, "Kubernetes namespace the environment deploys to (default: its name); "
        "no two environments may share one."
    ),
    "application": Key(
        _k8s_name, "Argo CD Application that syncs the overlay (default: mlops-<name>); "
        "no two environments may share one."
    ),
    "canary": Key(
        lambda v, w: v, "Roll out as a KServe canary (see canary.*); only for serverless mode."
    ),
    "schedules": Key(
        lambda v, w: v,
        "Recurring runs of pipelines in this environment, written as Kubeflow Pipelines "
        "ScheduledWorkflows beside the compiled pipelines (see schedules[].*).",
        default=(),
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
class Schedule:
    """One `schedules:` item; `where` is its file:line, for problems found when compiling."""

    pipeline: str
    name: str
    cron: str | None = None  # in KFP's form: seconds first
    interval: int | None = None  # seconds
    parameters: Mapping[str, Any] = field(default_factory=dict)
    max_concurrency: int = 1
    catchup: bool = True
    enabled: bool = True
    where: str = field(default="mlops.yaml:1", compare=False)
    # file:line of the `pipeline` key and of each parameter ("parameters.<name>")
    lines: Mapping[str, str] = field(default_factory=dict, compare=False)

    def at(self, key: str) -> str:
        """file:line of `key` of this schedule (of the item, if unknown)."""
        return self.lines.get(key, self.where)


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
    schedules: tuple[Schedule, ...] = ()

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
    envs = tuple(_environment(doc, item, doc.where(node, i)) for i, item in enumerate(node))
    seen: set[str] = set()
    for i, env in enumerate(envs):
        if env.name in seen:
            raise ConfigError(f"{doc.where(node, i)}: environment {env.name!r} is listed twice")
        seen.add(env.name)
    _refuse_shared(doc, node, envs, "namespace", lambda e: e.k8s_namespace)
    _refuse_shared(doc, node, envs, "application", lambda e: e.argocd_application)
    return envs


def _refuse_shared(doc: Located, node: Any, envs: tuple[Environment, ...], key: str,
                   value: Callable[[Environment], str]) -> None:
    """Two environments in one namespace would each own the other's objects (Argo CD's
    SharedResourceWarning, then two Applications undoing each other's syncs); two with
    one Application name make applications.yaml fail to render."""
    first: dict[str, str] = {}
    for i, env in enumerate(envs):
        taken = first.setdefault(value(env), env.name)
        if taken != env.name:
            raise ConfigError(f"{doc.where(node, i)}: environments {taken} and {env.name} "
                              f"share the {key} {value(env)!r}; each needs its own")


def _environment(doc: Located, item: Any, where: str) -> Environment:
    # each part is located at its key or list item: a scalar value has no line of its own
    values = schema.read_section(doc, item, ENVIRONMENT_KEYS, "environment", where)
    values["gates"] = _gates(doc, item.get("gates"), values["name"], doc.where(item, "gates"))
    values["canary"] = read_canary(doc, item.get("canary"), values["name"],
                                   doc.where(item, "canary"))
    values["schedules"] = _schedules(doc, item.get("schedules"), values["name"],
                                     doc.where(item, "schedules"))
    return Environment(**values)


def _schedules(doc: Located, node: Any, env: str, at: str) -> tuple[Schedule, ...]:
    if node is None or node == ():
        return ()
    if not isinstance(node, list):
        raise ConfigError(f"{at}: schedules of {env} must be a list")
    schedules: list[Schedule] = []
    for i, item in enumerate(node):
        values = schema.read_section(doc, item, SCHEDULE_KEYS, f"a schedule of {env}",
                                     doc.where(node, i))
        where = doc.where(item)
        if (values["cron"] is None) == (values["interval"] is None):
            how = "sets both" if values["cron"] is not None else "needs one of"
            raise ConfigError(f"{where}: schedule of {values['pipeline']!r} in {env} {how} "
                              "cron and interval (give exactly one)")
        values["name"] = values["name"] or _k8s_name(values["pipeline"].replace("_", "-"),
                                                     f"{where}: pipeline")
        if values["name"] == "kustomization":  # schedules/kustomization.yaml lists them
            raise ConfigError(f"{where}: a schedule may not be named 'kustomization'")
        if any(s.name == values["name"] for s in schedules):
            raise ConfigError(f"{where}: schedule {values['name']!r} is listed twice in {env} "
                              "(give each a different name:)")
        schedules.append(Schedule(**values, where=where, lines=_lines(doc, item)))
    return tuple(schedules)


def _lines(doc: Located, item: Any) -> dict[str, str]:
    lines = {"pipeline": doc.where(item, "pipeline")}
    params = item.get("parameters")
    if isinstance(params, Mapping):
        lines.update({f"parameters.{name}": doc.where(params, name) for name in params})
    return lines


def _gates(doc: Located, node: Any, env: str, at: str) -> tuple[MetricGate, ...]:
    if node is None or node == ():
        return ()
    if not isinstance(node, list):
        raise ConfigError(f"{at}: gates of {env} must be a list")
    gates = []
    for i, item in enumerate(node):
        values = schema.read_section(doc, item, METRIC_GATE_KEYS, f"a gate of {env}",
                                     doc.where(node, i))
        if all(values[k] is None for k in ("threshold", "min_absolute_change",
                                           "min_relative_change", "max_relative_drop")):
            raise ConfigError(
                f"{doc.where(item)}: gate on {values['metric']!r} needs threshold, "
                "min_absolute_change, min_relative_change or max_relative_drop"
            )
        gates.append(MetricGate(**values))
    return tuple(gates)
