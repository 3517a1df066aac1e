"""`mlops status --env ENV`: does the cluster run what git says? Argo CD and KServe, read only.

The expected state comes from the remote branch head, read in a temporary
clone (your refs and work tree are untouched): the commit Argo CD should have
synced, the environment's settings, and the canary split in its release.yaml.
The observed state comes from the Kubernetes API. Without --wait this is a
report and exits 0 even when the environment has not converged; with --wait
it polls until it has, and exits 1 when --timeout runs out.
"""

from __future__ import annotations

from typing import Any

from mlops import config as cfg
from mlops.adapters import cluster
from mlops.commands import Context
from mlops.core import clusterstatus as cs
from mlops.errors import MlopsError
from mlops.records import dataclass
from mlops.services.convergence import Target, converge, observe, read_target
from mlops.services.envdir import environment


@dataclass(frozen=True)
class StatusOptions:
    env: str
    wait: bool = False
    timeout: float = 300.0
    revision: str | None = None  # default: the remote branch head
    context: str | None = None  # kubeconfig context


class NotConverged(MlopsError):
    """--wait ran out of time."""


def status(ctx: Context, opts: StatusOptions) -> int:
    config = cfg.load_config(ctx.root, ctx.environ)
    environment(config, opts.env)  # an unknown environment is a usage error, before any clone
    target = read_target(ctx.root, ctx.environ, config, opts.env, opts.revision, ctx.out.note)
    with cluster.connect(ctx.environ, opts.context) as kube:
        if opts.wait:
            summary = converge(kube, target, opts.timeout, ctx.out.note)
        else:
            summary = observe(kube, target)
            _require_objects(summary, target, kube.host)
    ctx.out.result(_document(target, summary, kube.host), _human(target, summary, kube.host))
    if opts.wait and not summary.converged:
        raise NotConverged(f"{target.env} did not converge within {opts.timeout:g}s: "
                           + "; ".join(summary.pending))
    return 0


def rollout_status(ctx: Context, opts: StatusOptions) -> int:
    """`mlops rollout status`: the same report; the split is what the canary should be at."""
    return status(ctx, opts)


def _require_objects(summary: cs.Summary, target: Target, host: str) -> None:
    """Without --wait a missing object is a misconfiguration, not a state to report."""
    expected = summary.expected
    if summary.application is None:
        raise cluster.ClusterError(
            f"Argo CD Application {expected.application} not found on {host}; set "
            f"`application:` for environment {target.env} (or argocd.namespace) in mlops.yaml")
    if summary.service is None:
        raise cluster.ClusterError(
            f"InferenceService {expected.service} not found on {host}; has Argo CD synced "
            f"environments/{target.env}? (`service:` / `namespace:` in mlops.yaml name it)")


def _document(target: Target, summary: cs.Summary, host: str) -> dict[str, Any]:
    return {"env": target.env, "cluster": host, "release": target.release,
            "rollout": dict(target.rollout) if target.rollout else None, **summary.as_dict()}


def _human(target: Target, summary: cs.Summary, host: str) -> str:
    lines = [f"environment  {target.env} on {host}", _expected_line(target, summary)]
    lines += _app_lines(summary) + _service_lines(summary)
    if summary.converged:
        lines.append("converged    yes")
    else:
        lines.append("converged    no")
        lines += [f"  - {reason}" for reason in summary.pending]
    return "\n".join(lines)


def _expected_line(target: Target, summary: cs.Summary) -> str:
    rollout = target.rollout or {}
    canary = ""
    if rollout:
        step = f" step {rollout.get('step')}/{rollout.get('steps')}" if rollout.get("step") else ""
        canary = f" ({rollout.get('state')}{step})"
    return (f"expected     commit {target.revision[:10]}, release {target.release or 'none'}, "
            f"latest revision at {summary.expected.percent}%{canary}")


def _app_lines(summary: cs.Summary) -> list[str]:
    app, name = summary.application, summary.expected.application
    if app is None:
        return [f"argo cd      {name}: not found"]
    revision = app.revision[:10] if app.revision else "nothing"
    operation = f" (last sync {app.operation})" if app.operation else ""
    return [f"argo cd      {name}: {app.sync or 'Unknown'} to {revision}, "
            f"{app.health or 'Unknown'}{operation}"]


def _service_lines(summary: cs.Summary) -> list[str]:
    svc, name = summary.service, summary.expected.service
    if svc is None:
        return [f"kserve       {name}: not found"]
    conditions = " ".join(f"{c.type}={c.status}" for c in svc.conditions) or "none"
    revisions = ", ".join(f"{label} {rev or '-'}" for label, rev in (
        ("created", svc.latest_created_revision), ("ready", svc.latest_ready_revision),
        ("rolled out", svc.latest_rolledout_revision),
        ("previous", svc.previous_rolledout_revision)))
    lines = [f"kserve       {name}: {'Ready' if svc.ready else 'not Ready'}  {svc.url or ''}",
             f"conditions   {conditions}", f"revisions    {revisions}"]
    for i, t in enumerate(svc.traffic):
        label = "traffic      " if i == 0 else "             "
        latest = "latest" if t.latest_revision else "      "
        lines.append(f"{label}{t.revision_name or '-':<32} {t.percent:>3}%  {latest}  "
                     f"tag {t.tag or '-'}")
    return [line.rstrip() for line in lines]
