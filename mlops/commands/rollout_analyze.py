"""`mlops rollout analyze` and `mlops rollout run`: judge the canary, then act on it.

The analysis reads the canary's state from the remote branch (the truth Argo
CD deploys), the revisions from the cluster (or --revision flags), queries
Prometheus on the schedule in mlops.yaml (stopping as soon as the result
cannot be a pass), and keeps the decision record for the commit that follows.
Exit 0 pass, 3 fail, 5 inconclusive.

`rollout run` waits after each step it commits until the cluster runs that
step (the `mlops status` check: Argo CD Synced to the commit and Healthy, the
InferenceService Ready with the step's percent on its latest revision), so
the next analysis measures the new split, not the one before it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlops import analysis_run
from mlops import config as cfg
from mlops.adapters import cluster, metrics
from mlops.adapters.gitops.workspace import Workspace, remote_url
from mlops.atomicfile import write_json_atomic
from mlops.commands import Context
from mlops.core import rollout as state_machine
from mlops.core.decision import check_lines, stopped_summary
from mlops.core.promotion import passed
from mlops.errors import AnalysisInconclusive, ApprovalError, ConfigError, GateFailed
from mlops.output import user_target
from mlops.records import dataclass, replace
from mlops.services import canary, convergence
from mlops.services import decisions as records
from mlops.services.convergence import service_ref
from mlops.services.envdir import EnvDir

APPROVAL_POLL = 15.0  # seconds between looks for a release manager's approval
# Argo CD looks at git every 3 minutes by default (argocd-cm timeout.reconciliation: 180s),
# then KServe must make the new split Ready: 10 minutes covers a poll, a sync and a rollout.
SYNC_TIMEOUT = 600.0


class SyncTimeout(AnalysisInconclusive):
    """`rollout run`: the cluster did not reach the step just committed in time (exit 5)."""


@dataclass(frozen=True)
class AnalyzeOptions:
    env: str
    revision: str | None = None
    baseline_revision: str | None = None
    context: str | None = None
    output: Path | None = None
    wait_approval: bool = False
    timeout: float = 3600.0
    sync_timeout: float = SYNC_TIMEOUT
    max_age: float = state_machine.ANALYSIS_MAX_AGE  # of the analysis a step is promoted on
    approval_poll: float = APPROVAL_POLL


def analyze(ctx: Context, opts: AnalyzeOptions) -> int:
    decision = decide(ctx, opts)
    ctx.out.result(decision, decision_text(decision))
    raise_unless_pass(decision)
    return 0


def decide(ctx: Context, opts: AnalyzeOptions) -> dict[str, Any]:
    """Run the analysis of the canary now in `opts.env`; keep and return its record."""
    target = None if opts.output is None else user_target(opts.output, "--output")
    local = cfg.load_config(ctx.root, ctx.environ)
    canary.canary_environment(local, opts.env)
    config, env, record, ref = _remote_state(ctx, local, opts.env)
    state = state_machine.require_in_progress(record.rollout if record else None, env.name)
    if not config.prometheus.url:
        raise ConfigError("no Prometheus to analyse with: set prometheus.url in mlops.yaml "
                          f"or ${cfg.PROMETHEUS_URL_ENV}")
    revision, baseline = _revisions(ctx, opts, ref)
    values = {"service": ref[1], "namespace": ref[0], "revision": revision,
              "baseline_revision": baseline}
    ctx.out.note(f"analysing release {record.release.id} at {state['percent']}% in {env.name}: "
                 f"{revision} against {baseline}")
    report = analysis_run.run_analysis(
        env.canary.metrics, metrics.Prometheus(config.prometheus.url).query, values,
        offline=[dict(g) for g in record.gates], progress=ctx.out.note)
    decision = {"env": env.name, "release": record.release.id, "step": state["step"],
                "percent": state["percent"], "final": state_machine.is_final(state),
                **report.as_dict()}
    records.save_decision(ctx.root, env.name, decision)
    if target is not None:
        write_json_atomic(target, decision)
    return decision


def _remote_state(ctx: Context, local: cfg.MlopsConfig, name: str):
    url = remote_url(ctx.root, local.git.remote)
    with Workspace(url, local.git.branch, reference=ctx.root, note=ctx.out.note) as ws:
        config = cfg.load_config(ws.root, ctx.environ)
        env = canary.canary_environment(config, name)
        return config, env, EnvDir(ws.root, env.name).read_record(), service_ref(ws.root, env)


def _revisions(ctx: Context, opts: AnalyzeOptions, ref: tuple[str, str]) -> tuple[str, str]:
    """(canary, baseline) Knative revisions: the flags, else the InferenceService's status."""
    if opts.revision and opts.baseline_revision:
        return opts.revision, opts.baseline_revision
    with cluster.connect(ctx.environ, opts.context) as kube:
        isvc = kube.inference_service(*ref)
    if isvc is None:
        raise ConfigError(f"InferenceService {ref[0]}/{ref[1]} is not in the cluster; "
                          "pass --revision and --baseline-revision")
    predictor = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
    revision = opts.revision or predictor.get("latestCreatedRevision")
    baseline = opts.baseline_revision or predictor.get("latestRolledoutRevision")
    if not revision or not baseline or revision == baseline:
        raise ConfigError(f"InferenceService {ref[1]} shows no canary revision beside a rolled-"
                          f"out one (latest {revision}, rolled out {baseline}); has Argo CD "
                          "synced the rollout? Or pass --revision and --baseline-revision")
    return str(revision), str(baseline)


def decision_text(decision: dict[str, Any]) -> str:
    lines = [f"analysis of release {decision['release']} at {decision['percent']}% in "
             f"{decision['env']}: {decision['result'].upper()}"]
    lines += [f"  {m['result']:<12} {m['metric']}: {m['detail']}" for m in decision["metrics"]]
    lines += [f"  {g['result']:<12} {g['gate']} (offline): {g['detail']}"
              for g in decision["offline"]]
    stopped = stopped_summary(decision)
    if stopped:
        lines.append(f"  {stopped}: {decision.get('stop_reason')}")
    lines.append("queries:")
    lines += [f"  {line}" for line in check_lines(decision)]
    return "\n".join(lines)


def raise_unless_pass(decision: dict[str, Any]) -> None:
    reason = (decision.get("reasons") or ["no reason"])[0]
    if decision["result"] == "fail":
        raise GateFailed(f"canary analysis failed: {reason}")
    if not passed(decision):
        raise AnalysisInconclusive(f"canary analysis inconclusive: {reason}")


def run(ctx: Context, opts: AnalyzeOptions) -> int:
    """Analyze and promote until 100%; abort on a failure; stop on anything unsure.

    After each step but the last it waits for the cluster to run that step
    (`--sync-timeout`); a timeout is exit 5 and commits nothing further.
    """
    steps: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"env": opts.env, "steps": steps}
    done = _complete_release(ctx, opts.env)
    if done is not None:  # e.g. a first release, which `rollout start` took to 100% itself
        ctx.out.result({**doc, "state": "complete", "release": done, "commit": None},
                       f"{opts.env} runs release {done} at 100%; no canary to analyse")
        return 0
    ropts = canary.RolloutOptions(env=opts.env, max_age=opts.max_age)
    deadline: float | None = None  # of the wait for the approval, set when it begins
    while True:
        decision = decide(ctx, opts)
        steps.append(_step_entry(decision))
        if decision["result"] == "fail":
            doc["aborted"] = canary.abort_canary(ctx, canary.RolloutOptions(
                env=opts.env, reason=f"analysis failed: {decision['reasons'][0]}"))
            ctx.out.result(doc, canary.aborted_text(doc["aborted"]))
            raise_unless_pass(decision)
        if not passed(decision):
            ctx.out.result(doc, decision_text(decision))
            raise_unless_pass(decision)
        if not decision.get("final", True):
            cluster.configure(ctx.environ, opts.context)  # before the commit it must wait for
        if deadline is None and decision.get("final", True):
            deadline = time.monotonic() + opts.timeout
        promoted = _promote_when_approved(ctx, opts, ropts, decision, deadline)
        if promoted is None:
            continue  # the analysis grew old while the approval was awaited: analyse again
        steps[-1].update(promoted_to=promoted["percent"], commit=promoted["commit"])
        ctx.out.note(canary.promoted_text(promoted))
        if promoted["state"] == state_machine.COMPLETE:
            ctx.out.result({**doc, "state": "complete", "commit": promoted["commit"]},
                           canary.promoted_text(promoted))
            return 0
        steps[-1]["synced_at"] = wait_for_step(ctx, opts, promoted)


def _complete_release(ctx: Context, env: str) -> str | None:
    """The release `env` runs at 100% with its rollout complete, else None."""
    local = cfg.load_config(ctx.root, ctx.environ)
    canary.canary_environment(local, env)
    _, _, record, _ = _remote_state(ctx, local, env)
    state = (record.rollout or {}) if record else {}
    if record is not None and state.get("state") == state_machine.COMPLETE:
        return record.release.id
    return None


def _step_entry(decision: dict[str, Any]) -> dict[str, Any]:
    return {"analysis": decision["result"], "percent": decision["percent"],
            "reasons": decision["reasons"], "stopped_early": decision.get("stopped_early"),
            "started_at": decision.get("started_at"), "finished_at": decision.get("finished_at")}


def wait_for_step(ctx: Context, opts: AnalyzeOptions, promoted: dict[str, Any]) -> float:
    """Block until the cluster runs the step just pushed; the epoch time it was seen.

    Expected: the step's commit synced and Healthy in Argo CD, and the
    InferenceService Ready at the step's percent (`mlops status`' checks).
    """
    local = cfg.load_config(ctx.root, ctx.environ)
    target = convergence.read_target(ctx.root, ctx.environ, local, opts.env,
                                     promoted["commit"], ctx.out.note)
    target = replace(target, rollout={"state": promoted["state"], "step": promoted["step"],
                                      "percent": promoted["percent"]})
    ctx.out.note(f"waiting up to {opts.sync_timeout:g}s for Argo CD to sync "
                 f"{promoted['commit'][:12]} and {target.service} to serve "
                 f"{promoted['percent']}%")
    with cluster.connect(ctx.environ, opts.context) as kube:
        summary = convergence.converge(kube, target, opts.sync_timeout, ctx.out.note)
    if not summary.converged:
        raise SyncTimeout(
            f"{target.env} did not reach {promoted['percent']}% (commit "
            f"{promoted['commit'][:12]}) within {opts.sync_timeout:g}s: "
            f"{'; '.join(summary.pending)}; nothing further committed, run "
            f"`mlops rollout run --env {target.env}` again once `mlops status` converges")
    return time.time()


def _promote_when_approved(ctx, opts: AnalyzeOptions, ropts, decision,
                           deadline: float | None) -> dict[str, Any] | None:
    """Promote; with --wait-approval, look again every --approval-poll seconds, the last
    time when --timeout runs out (a timeout shorter than the poll still waits it out).

    None when the analysis is about to grow older than --max-age while the approval is
    awaited: promoting on it would then be refused (exit 3) however long --timeout is,
    so the caller analyses the canary again and waits on with the fresh decision.
    """
    deadline = time.monotonic() + opts.timeout if deadline is None else deadline
    stale_at = float(decision.get("finished_at", 0)) + opts.max_age
    analysing = _analysis_seconds(decision)
    while True:
        began = time.monotonic()
        try:
            return canary.promote_step(ctx, ropts, decision)
        except state_machine.StaleAnalysis:
            # it aged between the last look at the clock and the check (a slow clone)
            if not opts.wait_approval or deadline - time.monotonic() <= analysing:
                raise
            _note_analysing_again(ctx, opts, decision)
            return None
        except ApprovalError as exc:
            took = time.monotonic() - began
            left = deadline - time.monotonic()
            if not opts.wait_approval or left <= 0:
                raise
            # the next look must be over before the analysis is too old to promote on
            fresh_for = stale_at - time.time() - max(1.0, 2 * took)
            if fresh_for <= 0:
                if left <= analysing + took:  # no time to analyse and look again: exit 4
                    raise
                _note_analysing_again(ctx, opts, decision)
                return None
            ctx.out.note(f"waiting for a release manager's approval: {exc.message}")
            time.sleep(min(opts.approval_poll, left, fresh_for))


def _note_analysing_again(ctx, opts: AnalyzeOptions, decision) -> None:
    ctx.out.note(f"the analysis of {decision.get('percent')}% would be older than "
                 f"--max-age ({_duration_text(opts.max_age)}) by the time an approval is "
                 "seen: analysing the canary again")


def _analysis_seconds(decision) -> float:
    """How long the analysis took: about what another one will take."""
    started, finished = decision.get("started_at"), decision.get("finished_at")
    if not isinstance(started, (int, float)) or not isinstance(finished, (int, float)):
        return 0.0
    return max(float(finished) - float(started), 0.0)


def _duration_text(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
