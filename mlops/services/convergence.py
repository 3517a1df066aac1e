"""Has an environment converged? What git says should run, polled against the cluster.

The expected state comes from the remote branch, read in a temporary clone
(the user's refs and work tree are untouched); the observed state from the
Kubernetes API (`mlops.adapters.cluster`), compared by `mlops.core.clusterstatus`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops import config as cfg
from mlops import isvc
from mlops.adapters import cluster, kustomize
from mlops.adapters.gitops.workspace import Workspace, remote_url
from mlops.core import clusterstatus as cs
from mlops.errors import ConfigError
from mlops.records import dataclass
from mlops.services.envdir import EnvDir

FIRST_POLL, MAX_POLL = 0.5, 5.0  # seconds between polls: quick at first, then backing off



@dataclass(frozen=True)
class Target:
    """What git says should run in one environment, and where to look for it."""

    env: str
    revision: str
    release: str | None
    rollout: Mapping[str, Any] | None
    namespace: str
    service: str
    argocd_namespace: str
    application: str

    def expected(self) -> cs.Expected:
        return cs.Expected(revision=self.revision, percent=cs.expected_percent(self.rollout),
                           application=f"{self.argocd_namespace}/{self.application}",
                           service=f"{self.namespace}/{self.service}")


def read_target(root: Path, environ: Mapping[str, str], config: cfg.MlopsConfig, env: str,
                revision: str | None, note: Callable[[str], None]) -> Target:
    """What the remote branch (at `revision`, default its head) says `env` should run."""
    url = remote_url(root, config.git.remote)
    with Workspace(url, config.git.branch, reference=root, note=note) as ws:
        return _target_at(ws.root, revision or ws.head(), environ, env)


def _target_at(root: Path, revision: str, environ: Mapping[str, str], name: str) -> Target:
    """The remote's own mlops.yaml: its settings are the ones Argo CD deploys from."""
    config = cfg.load_config(root, environ)
    try:
        env = config.environment(name)
    except ConfigError:
        raise ConfigError(f"environment {name!r} is not in the remote branch's mlops.yaml "
                          "yet; push it first") from None
    record = EnvDir(root, env.name).read_record()
    namespace, service = service_ref(root, env)
    return Target(env=env.name, revision=revision,
                  release=record.release.id if record else None,
                  rollout=record.rollout if record else None,
                  namespace=namespace, service=service,
                  argocd_namespace=config.argocd.namespace,
                  application=env.argocd_application)


def service_ref(root: Path, env: cfg.Environment) -> tuple[str, str]:
    """(namespace, name) of the InferenceService: `service:`, else the one the overlay renders."""
    if env.service:
        return env.k8s_namespace, env.service
    where = EnvDir(root, env.name)
    objects = kustomize.render(where.path, display=f"{where.where} (remote head)")
    meta = isvc.find_service(objects, None, where.where).get("metadata") or {}
    return str(meta.get("namespace") or env.k8s_namespace), str(meta.get("name"))


def observe(kube: cluster.Cluster, target: Target) -> cs.Summary:
    app = kube.application(target.argocd_namespace, target.application)
    isvc = kube.inference_service(target.namespace, target.service)
    return cs.summarize(app, isvc, target.expected())


def converge(kube: cluster.Cluster, target: Target, timeout: float,
             note: Callable[[str], None]) -> cs.Summary:
    """Poll until `target` has converged or `timeout` seconds pass; the last summary."""
    deadline = time.monotonic() + timeout
    delay, said = FIRST_POLL, None
    while True:
        summary = observe(kube, target)
        left = deadline - time.monotonic()
        if summary.converged or left <= 0:
            return summary
        if summary.pending != said:  # a note when something changes, not one per poll
            note(f"waiting for {target.env}: " + "; ".join(summary.pending))
            said = summary.pending
        time.sleep(min(delay, left))
        delay = min(delay * 2, MAX_POLL)
