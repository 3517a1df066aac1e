"""Command-line wiring. Parses arguments, builds a Context, dispatches to
`mlops.commands.<verb>` inside the one handler that turns errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mlops import __version__
from mlops.errors import EXIT_ERROR, EXIT_USAGE, MlopsError, UsageError
from mlops.output import Output

EXIT_CODES_HELP = """exit codes:
  0  success
  1  error
  2  usage (bad arguments, unknown component or environment on the command line)
  3  gate failed
  4  approval missing or invalid
  5  analysis inconclusive (hold)
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--repo", metavar="DIR", type=Path, help="repository (default: git root of the cwd)"
    )
    group.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    group.add_argument("-v", "--verbose", action="store_true", help="show full build logs")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="build, test and push components whose inputs changed",
        description=(
            "Build every component under components/ whose input hash has no image in the "
            "registry yet; run its test command in the fresh image; push it with the tags "
            "<version>, <version>-<short commit> and ih-<input hash>; record digests."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("components", nargs="*", metavar="COMPONENT", help="only these components")
    p.add_argument("--dry-run", action="store_true", help="print the plan; touch no Docker")
    push = p.add_mutually_exclusive_group()
    push.add_argument(
        "--push",
        dest="push",
        action="store_true",
        default=True,
        help="push images to the registry (default)",
    )
    push.add_argument(
        "--no-push", dest="push", action="store_false", help="build and test locally only"
    )
    p.add_argument(
        "--changed-since",
        metavar="REF",
        help="only components whose inputs changed since this git ref",
    )
    p.add_argument(
        "--build-arg",
        metavar="KEY=VALUE",
        action="append",
        type=_key_value,
        default=[],
        help="override a build arg for this run (repeatable)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", type=Path, help="write the build record (JSON) here"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        metavar="N",
        help="parallel builds (default: build.jobs in mlops.yaml, else 2)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if an image exists")
    _common(p)
    p.set_defaults(handler=_run_build)


def _run_build(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.build import BuildOptions, build

    return build(
        ctx,
        BuildOptions(
            components=tuple(args.components),
            dry_run=args.dry_run,
            push=args.push,
            changed_since=args.changed_since,
            build_args=dict(args.build_arg),
            output=args.output,
            jobs=args.jobs,
            force=args.force,
        ),
    )


def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="compile pipelines into an environment's overlay, images pinned by digest",
        description=(
            "Compile pipelines/<PIPELINE>.py with the kfp SDK into Kubeflow Pipelines' "
            "Pipeline + PipelineVersion resources under environments/<env>/pipelines/, "
            "listed in the overlay's kustomization. Component images resolve to the "
            "digests pinned in the overlay, or in a build record with --build. An "
            "unchanged pipeline is not recompiled."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pipelines", nargs="*", metavar="PIPELINE", help="only these pipelines")
    p.add_argument("--env", required=True, help="environment whose overlay to write")
    p.add_argument(
        "--build",
        metavar="FILE",
        type=Path,
        help="take images from this build record instead of the overlay's pins",
    )
    p.add_argument("--force", action="store_true", help="recompile even if nothing changed")
    _common(p)
    p.set_defaults(handler=_run_compile)


def _run_compile(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.compile import CompileOptions, compile_pipelines

    return compile_pipelines(
        ctx,
        CompileOptions(
            env=args.env, pipelines=tuple(args.pipelines), build=args.build, force=args.force
        ),
    )


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a compiled pipeline locally on the pinned images",
        description=(
            "Run environments/<env>/pipelines/<PIPELINE>.yaml, exactly as compiled, with "
            "kfp.local's Docker runner on the pinned images. Writes metrics.json, the model "
            "and run.json to --output-dir (default .mlops/runs/<env>/<pipeline>/)."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pipeline", metavar="PIPELINE")
    p.add_argument("--env", required=True, help="environment whose compiled pipeline to run")
    p.add_argument(
        "--local",
        action="store_true",
        required=True,
        help="run on this machine with Docker (the only mode so far)",
    )
    p.add_argument("--output-dir", metavar="DIR", type=Path, help="where to put the outputs")
    p.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        type=_key_value,
        default=[],
        help="a pipeline parameter (repeatable)",
    )
    _common(p)
    p.set_defaults(handler=_run_run)


def _run_run(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.run import RunOptions, run

    return run(
        ctx,
        RunOptions(
            pipeline=args.pipeline,
            env=args.env,
            local=args.local,
            output_dir=args.output_dir,
            params=dict(args.param),
        ),
    )


def _add_promote(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        help="promote a release into an environment by one gated commit",
        description=(
            "Compute the release (digests, compiled pipelines, model URI, metrics), check "
            "the target environment's gates and approval, verify every digest in the "
            "registry, pin the overlay, write release.yaml, commit once and push. Works in "
            "an isolated clone of the remote branch; never in your work tree."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--to", required=True, metavar="ENV", help="target environment")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--build", metavar="FILE", type=Path,
                        help="build record (for the first environment)")
    source.add_argument("--from", dest="source", metavar="ENV",
                        help="the previous environment, whose release moves unchanged")
    p.add_argument("--metrics", metavar="FILE", type=Path,
                   help="evaluation metrics (JSON object of name to number) for the gates")
    p.add_argument("--model-uri", metavar="URI", help="the model the release serves")
    p.add_argument("--plan", action="store_true",
                   help="print the diff and gate results; commit and push nothing")
    p.add_argument("--pr", action="store_true",
                   help="push a branch mlops/promote/<env>/<release> instead of the target branch")
    p.add_argument("--clear-hold", action="store_true",
                   help="lift a hold set by a rollback, with this promotion")
    _common(p)
    p.set_defaults(handler=_run_promote)


def _run_promote(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.promote import PromoteOptions, promote

    return promote(ctx, PromoteOptions(
        to=args.to, source=args.source, build=args.build, metrics=args.metrics,
        model_uri=args.model_uri, plan=args.plan, pr=args.pr, clear_hold=args.clear_hold))


def _add_approve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "approve",
        help="approve a release for an environment with a signed commit",
        description=(
            "Make an empty commit signed with your SSH key (gpg.format=ssh) that approves "
            "exactly one release for one environment, and push it. Promotions that need "
            "approval verify it against the repository's allowed-signers file."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", required=True, help="environment the release is about to enter")
    p.add_argument("--release", required=True, metavar="ID", help="release id, e.g. r-1a2b3c4d5e6f")
    p.add_argument("--key", metavar="PATH", type=Path,
                   help="SSH private key to sign with (default: git's user.signingkey)")
    p.add_argument("--principal", metavar="NAME",
                   help="your name in the allowed-signers file (default: git's user.email)")
    _common(p)
    p.set_defaults(handler=_run_approve)


def _run_approve(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.approve import ApproveOptions, approve

    return approve(ctx, ApproveOptions(env=args.env, release=args.release, key=args.key,
                                       principal=args.principal))


def _add_history(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="promotions, rollbacks and approvals, from git trailers",
        description="List what reached each environment, newest first, from the remote "
                    "branch's commit trailers: when, release, digests, gates, approver.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", help="only this environment")
    p.add_argument("--limit", type=_positive, default=50, help="at most this many entries")
    _common(p)
    p.set_defaults(handler=_run_history)


def _run_history(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.history import HistoryOptions, history

    return history(ctx, HistoryOptions(env=args.env, limit=args.limit))


def _add_rollback(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollback",
        help="put the previous (or named) release back, by a new commit, and set a hold",
        description=(
            "Re-promote the release an environment had before (or --to RELEASE) as a new "
            "commit, never a force-push, and set a hold that refuses later promotions into "
            "it until `mlops promote --clear-hold`."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", required=True, help="environment to roll back")
    p.add_argument("--to", metavar="RELEASE", help="this earlier release (default: the previous)")
    p.add_argument("--reason", help="why, recorded with the hold")
    _common(p)
    p.set_defaults(handler=_run_rollback)


def _run_rollback(ctx, args: argparse.Namespace) -> int:
    from mlops.commands.rollback import RollbackOptions, rollback

    return rollback(ctx, RollbackOptions(env=args.env, to=args.to, reason=args.reason))


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlops",
        description="GitOps/MLOps CI/CD: build components, compile pipelines, promote "
        "releases by commit, roll out KServe canaries.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_build(sub)
    _add_compile(sub)
    _add_run(sub)
    _add_promote(sub)
    _add_approve(sub)
    _add_history(sub)
    _add_rollback(sub)
    return parser


def _context(args: argparse.Namespace, out: Output):
    from mlops import gitops
    from mlops.commands import Context

    root = gitops.find_root(args.repo.resolve() if args.repo else Path.cwd())
    return Context(root=root, out=out, verbose=args.verbose, environ=dict(os.environ))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Output(json_mode="--json" in argv)
    try:
        args = make_parser().parse_args(argv)
        handler: Callable | None = getattr(args, "handler", None)
        if handler is None:
            make_parser().print_help(out.stderr)
            return EXIT_USAGE
        return int(handler(_context(args, out), args))
    except MlopsError as exc:
        out.error(exc.message, exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        out.error("interrupted", 130)
        return 130
    except OSError as exc:
        out.error(f"{exc.filename or ''}: {exc.strerror}".lstrip(": "), EXIT_ERROR)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
