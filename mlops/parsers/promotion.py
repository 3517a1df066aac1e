"""`mlops promote`, `approve`, `history` and `rollback`: releases moving by commit."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.parsers import (
    Subcommands,
    add,
    common,
    content_digest,
    positive,
    principal,
    release_id,
    trust_root,
)


def _add_promote(sub: Subcommands) -> None:
    p = add(
        sub,
        "promote",
        description=(
            "Compute the release (digests, compiled pipelines, model URI, metrics), check "
            "the target environment's gates and approval, verify every digest in the "
            "registry, pin the overlay, write release.yaml, commit once and push. Works in "
            "an isolated clone of the remote branch; never in your work tree."
        ),
    )
    p.add_argument("--to", required=True, metavar="ENV", help="target environment")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--build", metavar="FILE", type=Path,
                        help="build record (for the first environment)")
    source.add_argument("--from", dest="source", metavar="ENV",
                        help="the previous environment, whose release moves unchanged")
    p.add_argument("--metrics", metavar="FILE|RUN_ID", type=Path,
                   help="evaluation metrics for the gates: a JSON object of name to number, "
                        "or the id of a run recorded by `mlops run` (`mlops runs list`)")
    p.add_argument("--model-uri", metavar="URI", help="the model the release serves")
    p.add_argument("--plan", action="store_true",
                   help="print the diff and gate results; commit and push nothing")
    p.add_argument("--pr", action="store_true",
                   help="push a branch mlops/promote/<env>/<release> instead of the target branch")
    p.add_argument("--clear-hold", action="store_true",
                   help="lift a hold set by a rollback, with this promotion")
    trust_root(p)
    common(p)
    p.set_defaults(handler=_run_promote)


def _run_promote(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.promote import PromoteOptions, promote

    return promote(ctx, PromoteOptions(
        to=args.to, source=args.source, build=args.build, metrics=args.metrics,
        model_uri=args.model_uri, plan=args.plan, pr=args.pr, clear_hold=args.clear_hold))


def _add_approve(sub: Subcommands) -> None:
    p = add(
        sub,
        "approve",
        description=(
            "Make an empty commit signed with your SSH key (gpg.format=ssh) that approves "
            "exactly one release for one environment, and push it. Promotions that need "
            "approval verify it against the trust root (allowed signers and release "
            "managers); so does approve, before pushing: an approval that would not count "
            "is refused (exit 4) and nothing is pushed."
        ),
    )
    p.add_argument("--env", required=True, help="environment the release is about to enter")
    p.add_argument("--release", required=True, metavar="ID", type=release_id,
                   help="release id, e.g. r-1a2b3c4d5e6f")
    p.add_argument("--digest", metavar="SHA256", type=content_digest,
                   help="the release's full content digest, as `mlops promote --plan --json` "
                        "prints it (approval.digest): refuse unless the release waiting has "
                        "exactly that content")
    p.add_argument("--key", metavar="PATH", type=Path,
                   help="SSH private key to sign with (default: git's user.signingkey)")
    p.add_argument("--principal", metavar="NAME", type=principal,
                   help="your name in the allowed-signers file (default: git's user.email)")
    p.add_argument("--metrics", metavar="FILE|RUN_ID", type=Path,
                   help="the evidence the promotion attaches (a metrics file or a run id), "
                        "as given to `mlops promote`: "
                        "the approved id includes it")
    p.add_argument("--model-uri", metavar="URI",
                   help="the model URI the promotion attaches, as given to `mlops promote`")
    trust_root(p)
    common(p)
    p.set_defaults(handler=_run_approve)


def _run_approve(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.approve import ApproveOptions, approve

    return approve(ctx, ApproveOptions(env=args.env, release=args.release, key=args.key,
                                       principal=args.principal, metrics=args.metrics,
                                       model_uri=args.model_uri, digest=args.digest))


def _add_history(sub: Subcommands) -> None:
    p = add(
        sub,
        "history",
        description="List what reached each environment, newest first, from the remote "
                    "branch's commit trailers: when, release, digests, gates, approver.",
    )
    p.add_argument("--env", help="only this environment")
    p.add_argument("--limit", type=positive, default=50, help="at most this many entries")
    common(p)
    p.set_defaults(handler=_run_history)


def _run_history(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.history import HistoryOptions, history

    return history(ctx, HistoryOptions(env=args.env, limit=args.limit))


def _add_rollback(sub: Subcommands) -> None:
    p = add(
        sub,
        "rollback",
        description=(
            "Re-promote the release an environment had before (or --to RELEASE) as a new "
            "commit, never a force-push, and set a hold that refuses later promotions into "
            "it until `mlops promote --clear-hold`."
        ),
    )
    p.add_argument("--env", required=True, help="environment to roll back")
    p.add_argument("--to", metavar="RELEASE", type=release_id,
                   help="this earlier release (default: the previous)")
    p.add_argument("--expect", metavar="RELEASE", type=release_id,
                   help="the release the environment runs now, to roll back from; if the "
                        "remote moved on to another, refuse (default: the one first seen)")
    p.add_argument("--reason", help="why, recorded with the hold")
    trust_root(p)  # a gated environment takes back only a release approved under it
    common(p)
    p.set_defaults(handler=_run_rollback)


def _run_rollback(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.rollback import RollbackOptions, rollback

    return rollback(ctx, RollbackOptions(env=args.env, to=args.to, reason=args.reason,
                                         expect=args.expect))




def register(sub: Subcommands) -> None:
    sub.lazy("promote", "promote a release into an environment by one gated commit",
             _add_promote)
    sub.lazy("approve", "approve a release for an environment with a signed commit",
             _add_approve)
    sub.lazy("history", "promotions, rollbacks and approvals, from git trailers", _add_history)
    sub.lazy("rollback", "put the previous (or named) release back, by a new commit, and set "
             "a hold", _add_rollback)
