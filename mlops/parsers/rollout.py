"""`mlops rollout start|analyze|promote|abort|run|status`: KServe canaries, by commit."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.parsers import Subcommands, add, common, release_id, trust_root


def _duration(text: str) -> float:
    from mlops.errors import ConfigError
    from mlops.schema import duration

    try:
        return duration(text, "duration")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_duration(text: str) -> float:
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0s")
    return seconds


def _env(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True, help="environment with a canary: in mlops.yaml")


def _revision_name(text: str) -> str:
    """A Knative revision name: it is filled into PromQL, so a name and nothing else."""
    from mlops.names import COMPONENT_NAME  # a DNS-1123 label, as Kubernetes names it

    if not COMPONENT_NAME.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a revision name (lowercase letters, "
                                          "digits and '-', at most 63 characters)")
    return text


def _revisions(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", metavar="NAME", type=_revision_name,
                   help="the canary's revision (default: latestCreatedRevision in the cluster)")
    p.add_argument("--baseline-revision", metavar="NAME", type=_revision_name,
                   help="the stable revision (default: latestRolledoutRevision in the cluster)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context for the cluster")


def _add_start(sub) -> None:
    p = add(sub, "start", help="start a canary of the previous environment's release",
            description="Write the release waiting in the previous environment into the "
            "overlay with spec.predictor.canaryTrafficPercent at the first step, after its "
            "offline gates pass; commit and push. Refuses RawDeployment/Standard mode.")
    _env(p)
    p.add_argument("--clear-hold", action="store_true", help="lift a hold with this rollout")
    trust_root(p)
    common(p)
    p.set_defaults(handler=_handler("start"))


def _add_analyze(sub) -> None:
    p = add(sub, "analyze", help="judge the canary on live metrics and offline gates",
            description="Run the analysis in mlops.yaml against Prometheus and print the "
            "decision record (every query, value and verdict). It is kept for the next "
            "`rollout promote`/`abort` commit. Exit 0 pass, 3 fail, 5 inconclusive.")
    _env(p)
    _revisions(p)
    p.add_argument("-o", "--output", metavar="FILE", type=Path,
                   help="also write the decision record here (for another CI job)")
    common(p)
    p.set_defaults(handler=_handler("analyze"))


def _add_promote(sub) -> None:
    p = add(sub, "promote", help="move the canary to its next step, or to 100%%",
            description="Needs a passing `rollout analyze` of the current step; the move to "
            "100% (canaryTrafficPercent removed) also needs a release manager's signed "
            "approval of the release. The decision record goes into the commit's trailers.")
    _env(p)
    p.add_argument("--analysis", metavar="FILE", type=Path,
                   help="decision record from `rollout analyze --output` (default: the kept one)")
    p.add_argument("--max-age", metavar="DURATION", type=_duration, default=3600.0,
                   help="refuse an analysis older than this (default 1h)")
    trust_root(p)
    common(p)
    p.set_defaults(handler=_handler("promote"))


def _add_abort(sub) -> None:
    p = add(sub, "abort", help="put the previous release back at 0%% canary and set a hold",
            description="Set canaryTrafficPercent to 0, restore the release the canary was "
            "measured against, set the hold (lifted by `rollout start --clear-hold`), commit.")
    _env(p)
    p.add_argument("--reason", help="why, recorded with the hold")
    p.add_argument("--expect", metavar="RELEASE", type=release_id,
                   help="the canary's release, as you saw it; if the remote moved on to "
                        "another, refuse (default: the one first seen)")
    trust_root(p)  # a gated environment takes back only a baseline approved under it
    common(p)
    p.set_defaults(handler=_handler("abort"))


def _add_run(sub) -> None:
    p = add(sub, "run", help="analyze and promote step by step; abort on a failed analysis",
            description="Loop: analyze, then promote one step, until 100%. At the final step "
            "it needs a signed approval: with --wait-approval it polls for one until "
            "--timeout, else it exits 4 saying what it needs. A failed analysis aborts the "
            "canary (exit 3); an inconclusive one stops (exit 5) and changes nothing. After "
            "each step it waits until `mlops status` sees the step's commit synced and the "
            "InferenceService at the step's percent; past --sync-timeout it exits 5 and "
            "commits nothing further.")
    _env(p)
    _revisions(p)
    p.add_argument("--wait-approval", action="store_true",
                   help="wait for the approval at the final step instead of exiting 4")
    p.add_argument("--timeout", metavar="DURATION", type=_duration, default=3600.0,
                   help="how long --wait-approval waits (default 1h)")
    p.add_argument("--max-age", metavar="DURATION", type=_duration, default=3600.0,
                   help="promote on an analysis at most this old; when --wait-approval "
                   "waits longer, the canary is analysed again (default 1h)")
    p.add_argument("--approval-poll", metavar="DURATION", type=_positive_duration, default=15.0,
                   help="how often --wait-approval looks for the approval (default 15s)")
    p.add_argument("--sync-timeout", metavar="DURATION", type=_duration, default=600.0,
                   help="how long to wait after a step for Argo CD to sync it and KServe to "
                   "serve its split (default 10m)")
    trust_root(p)
    common(p)
    p.set_defaults(handler=_handler("run"))


def _add_status(sub) -> None:
    from mlops.parsers import status as status_parser

    p = add(sub, "status", help="the canary in the cluster: sync, readiness and traffic split",
            description="`mlops status` for a rollout: is the pushed commit synced, is the "
            "InferenceService Ready, and does its latest revision carry the canary's percent?")
    status_parser.add_arguments(p)
    common(p)
    p.set_defaults(handler=_run_status)


def _run_status(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.status import rollout_status
    from mlops.parsers import status as status_parser

    return rollout_status(ctx, status_parser.options(args))


def _handler(verb: str):
    def run(ctx, args: argparse.Namespace) -> int:
        from mlops.commands import rollout

        opts = rollout.RolloutOptions(
            env=args.env, clear_hold=getattr(args, "clear_hold", False),
            reason=getattr(args, "reason", None), analysis=getattr(args, "analysis", None),
            max_age=getattr(args, "max_age", 3600.0), expect=getattr(args, "expect", None))
        if verb in ("analyze", "run"):
            from mlops.commands import rollout_analyze

            aopts = rollout_analyze.AnalyzeOptions(
                env=args.env, revision=args.revision, baseline_revision=args.baseline_revision,
                context=args.context, output=getattr(args, "output", None),
                wait_approval=getattr(args, "wait_approval", False),
                timeout=getattr(args, "timeout", 3600.0),
                max_age=getattr(args, "max_age", 3600.0),
                approval_poll=getattr(args, "approval_poll", rollout_analyze.APPROVAL_POLL),
                sync_timeout=getattr(args, "sync_timeout", rollout_analyze.SYNC_TIMEOUT))
            return getattr(rollout_analyze, verb)(ctx, aopts)
        return getattr(rollout, verb)(ctx, opts)

    return run


def register(sub: Subcommands) -> None:
    sub.lazy("rollout", "KServe canary rollouts: start, analyze, promote, abort, run",
             _add_rollout)


def _add_rollout(sub: Subcommands) -> None:
    p = add(sub, "rollout",
            description="Canary rollouts of the environment's InferenceService, each step a "
            "commit that Argo CD syncs.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=type(p), required=True)
    for add_verb in (_add_start, _add_analyze, _add_promote, _add_abort, _add_run,
                    _add_status):
        add_verb(verbs)
