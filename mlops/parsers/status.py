"""`mlops status`: whether Argo CD and KServe run what git says, read from the cluster.

`add_arguments` and `options` are shared with `mlops rollout status`, which
reports the same thing.
"""

from __future__ import annotations

import argparse
import math

from mlops.parsers import Subcommands, add, common


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True, help="environment to report on")
    p.add_argument("--wait", action="store_true",
                   help="poll until converged; exit 1 if --timeout runs out first")
    p.add_argument("--timeout", type=seconds, default=300.0, metavar="SECONDS",
                   help="how long --wait waits (default: 300)")
    p.add_argument("--revision", metavar="SHA",
                   help="the commit Argo CD should have synced (default: the remote branch head)")
    p.add_argument("--context", metavar="NAME",
                   help="kubeconfig context to use (default: its current-context)")


def options(args: argparse.Namespace):
    from mlops.commands.status import StatusOptions

    return StatusOptions(env=args.env, wait=args.wait, timeout=args.timeout,
                         revision=args.revision, context=args.context)


def register(sub: Subcommands) -> None:
    sub.lazy("status", "is the environment converged? Argo CD sync and health, KServe "
             "readiness and split", _add_status)


def _add_status(sub: Subcommands) -> None:
    p = add(
        sub,
        "status",
        description=(
            "Compare what the remote branch says an environment should run (its head commit "
            "and the canary split in release.yaml) with the cluster: the Argo CD Application's "
            "sync status, synced revision and health, and the InferenceService's conditions, "
            "revisions and traffic. Credentials come from $KUBECONFIG or ~/.kube/config, else "
            "from the pod's service account. Without --wait it only reports, and exits 0 even "
            "when the environment has not converged."
        ),
    )
    add_arguments(p)
    common(p)
    p.set_defaults(handler=_run_status)


def _run_status(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.status import status

    return status(ctx, options(args))
