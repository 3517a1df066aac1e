"""Has an environment converged? Argo CD's sync and health, KServe's readiness and split.

Pure: it takes the Argo CD Application and the InferenceService as the API
serves them (dicts), and what git says should be running (the revision and
the canary percent of `release.yaml`), and lists what does not match yet.
Converged means nothing is pending: the Application is Synced to the
expected revision and Healthy, and the InferenceService is Ready, has
observed its latest spec, serves its newest revision, and gives that
revision the expected share of traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.errors import ConfigError
from mlops.records import asdict, dataclass

ROLLOUT_STATES = ("canary", "complete", "aborted")


@dataclass(frozen=True)
class Expected:
    revision: str  # the git commit Argo CD should have synced
    percent: int  # traffic on the InferenceService's latest revision
    application: str  # "namespace/name", for messages
    service: str  # "namespace/name", for messages


@dataclass(frozen=True)
class AppStatus:
    sync: str | None
    revision: str | None
    synced: bool  # Synced, to the expected revision
    health: str | None
    health_message: str | None
    operation: str | None  # the phase of the last sync operation


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


@dataclass(frozen=True)
class Traffic:
    revision_name: str | None
    percent: int
    latest_revision: bool
    tag: str | None


@dataclass(frozen=True)
class ServiceStatus:
    ready: bool
    conditions: tuple[Condition, ...]
    url: str | None
    traffic: tuple[Traffic, ...]
    latest_created_revision: str | None
    latest_ready_revision: str | None
    latest_rolledout_revision: str | None
    previous_rolledout_revision: str | None
    stale: bool  # status.observedGeneration is behind metadata.generation


@dataclass(frozen=True)
class Split:
    expected: int
    observed: int | None  # percent on the latest revision; None without a traffic block
    as_expected: bool


@dataclass(frozen=True)
class Summary:
    expected: Expected
    application: AppStatus | None
    service: ServiceStatus | None
    split: Split
    pending: tuple[str, ...]

    @property
    def converged(self) -> bool:
        return not self.pending

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "converged": self.converged, "pending": list(self.pending)}


def expected_percent(rollout: Mapping[str, Any] | None) -> int:
    """Traffic the latest revision should carry, from release.yaml's `rollout`."""
    if not rollout:
        return 100
    state = rollout.get("state")
    if state not in ROLLOUT_STATES:
        raise ConfigError(f"release.yaml: rollout.state {state!r} is not one of "
                          f"{', '.join(ROLLOUT_STATES)}")
    if state == "aborted":
        return 0
    if state == "complete":
        return 100
    percent = rollout.get("percent")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ConfigError(f"release.yaml: rollout.percent must be 0..100, got {percent!r}")
    return percent


def summarize(app: Mapping[str, Any] | None, isvc: Mapping[str, Any] | None,
              expected: Expected) -> Summary:
    app_status = application_status(app, expected.revision) if app is not None else None
    service = service_status(isvc) if isvc is not None else None
    split = _split(service, expected.percent)
    pending = (*_app_pending(app_status, expected), *_service_pending(service, expected),
               *_split_pending(service, split))
    return Summary(expected, app_status, service, split, tuple(pending))


def application_status(app: Mapping[str, Any], expected_revision: str) -> AppStatus:
    status = _map(app.get("status"))
    sync, health = _map(status.get("sync")), _map(status.get("health"))
    revisions = sync.get("revisions") or []
    revision = sync.get("revision") or (revisions[0] if revisions else None)
    return AppStatus(
        sync=sync.get("status"),
        revision=revision,
        synced=sync.get("status") == "Synced" and same_revision(revision, expected_revision),
        health=health.get("status"),
        health_message=health.get("message"),
        operation=_map(status.get("operationState")).get("phase"),
    )


def same_revision(actual: str | None, expected: str) -> bool:
    """Equal commits; an abbreviated sha (7+ hex digits) matches its full form."""
    if not actual or not expected:
        return False
    short, full = sorted((actual, expected), key=len)
    return actual == expected or (len(short) >= 7 and full.startswith(short))


def service_status(isvc: Mapping[str, Any]) -> ServiceStatus:
    status = _map(isvc.get("status"))
    predictor = _map(_map(status.get("components")).get("predictor"))
    conditions = tuple(_condition(c) for c in status.get("conditions") or () if isinstance(c, dict))
    generation = _map(isvc.get("metadata")).get("generation")
    observed = status.get("observedGeneration")
    return ServiceStatus(
        ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
        conditions=conditions,
        url=status.get("url"),
        traffic=tuple(_traffic(t) for t in predictor.get("traffic") or () if isinstance(t, dict)),
        latest_created_revision=predictor.get("latestCreatedRevision"),
        latest_ready_revision=predictor.get("latestReadyRevision"),
        latest_rolledout_revision=predictor.get("latestRolledoutRevision"),
        previous_rolledout_revision=predictor.get("previousRolledoutRevision"),
        stale=isinstance(generation, int) and isinstance(observed, int) and observed < generation,
    )


def _condition(item: Mapping[str, Any]) -> Condition:
    return Condition(type=str(item.get("type")), status=str(item.get("status")),
                     reason=item.get("reason"), message=item.get("message"),
                     last_transition_time=item.get("lastTransitionTime"))


def _traffic(item: Mapping[str, Any]) -> Traffic:
    return Traffic(revision_name=item.get("revisionName"), percent=int(item.get("percent") or 0),
                   latest_revision=item.get("latestRevision") is True, tag=item.get("tag"))


def _split(service: ServiceStatus | None, expected: int) -> Split:
    if service is None:
        return Split(expected, None, False)
    if not service.traffic:  # RawDeployment mode has no Knative traffic block
        return Split(expected, None, expected == 100)
    observed = sum(t.percent for t in service.traffic if t.latest_revision)
    return Split(expected, observed, observed == expected)


def _app_pending(app: AppStatus | None, expected: Expected) -> list[str]:
    if app is None:
        return [f"Argo CD Application {expected.application} not found"]
    pending = []
    if app.sync != "Synced":
        pending.append(f"Argo CD Application {expected.application} is {app.sync or 'Unknown'}")
    if not same_revision(app.revision, expected.revision):
        pending.append(f"Argo CD synced {_short(app.revision)}, "
                       f"expected {_short(expected.revision)}")
    if app.health != "Healthy":
        detail = f" ({app.health_message})" if app.health_message else ""
        pending.append(f"Argo CD health is {app.health or 'Unknown'}{detail}")
    return pending


def _service_pending(service: ServiceStatus | None, expected: Expected) -> list[str]:
    name = f"InferenceService {expected.service}"
    if service is None:
        return [f"{name} not found"]
    pending = []
    if service.stale:
        pending.append(f"{name} has not observed its latest spec yet")
    if not service.ready:
        pending.append(f"{name} is not Ready{_why_not_ready(service)}")
    created, ready = service.latest_created_revision, service.latest_ready_revision
    if created and created != ready:
        pending.append(f"{name} revision {created} is not ready yet")
    return pending


def _why_not_ready(service: ServiceStatus) -> str:
    for c in service.conditions:
        if c.type == "Ready":
            detail = ": ".join(x for x in (c.reason, c.message) if x)
            return f" ({detail})" if detail else f" (Ready={c.status})"
    return " (no Ready condition yet)"


def _split_pending(service: ServiceStatus | None, split: Split) -> list[str]:
    if service is None or split.as_expected:
        return []
    if split.observed is None:
        return [f"no traffic split is reported (not serverless?), expected {split.expected}% "
                "on the latest revision"]
    return [f"latest revision has {split.observed}% of traffic, expected {split.expected}%"]


def _short(revision: str | None) -> str:
    return revision[:10] if revision else "nothing"


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
