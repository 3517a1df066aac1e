"""Command-line wiring. Parses arguments, builds a Context, dispatches to
`mlops.commands.<verb>` inside the one handler that turns errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, cast

from mlops import __version__, parsers
from mlops.errors import EXIT_ERROR, EXIT_USAGE, MlopsError, UsageError
from mlops.output import Output
from mlops.parsers import delivery, promotion, repository, rollout, runs, status


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def make_parser(lazy: bool = False) -> argparse.ArgumentParser:
    """The whole parser; `lazy`: each subcommand's parser is built only when the command
    line names it (what `main` does, so `mlops --help` builds none of them)."""
    parser = _Parser(
        prog="mlops",
        description="GitOps/MLOps CI/CD: build components, compile pipelines, promote "
        "releases by commit, roll out KServe canaries.",
        epilog=parsers.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlops {__version__}")
    sub = cast(parsers.Subcommands, parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, action=parsers.Subcommands))
    for group in (delivery, runs, promotion, rollout, status, repository):
        group.register(sub)
    if not lazy:
        sub.define_all()
    return parser


def _context(args: argparse.Namespace, out: Output):
    from mlops.adapters import gitops
    from mlops.commands import Context

    if not getattr(args, "needs_repo", True):  # `mlops init` makes the repository
        return Context(root=Path.cwd(), out=out, verbose=args.verbose, environ=dict(os.environ))
    root = gitops.find_root(args.repo.resolve() if args.repo else Path.cwd())
    return Context(root=root, out=out, verbose=args.verbose, environ=_environ(args))


def _environ(args: argparse.Namespace) -> dict[str, str]:
    """The process environment, with the options that stand for a variable applied."""
    environ = dict(os.environ)
    if getattr(args, "trust_root", None) is not None:
        from mlops.config import TRUST_ROOT_ENV

        environ[TRUST_ROOT_ENV] = str(args.trust_root.resolve())
    return environ


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Output(json_mode="--json" in argv)
    try:
        args = make_parser(lazy=True).parse_args(argv)
        out.command = " ".join(filter(None, (args.command, getattr(args, "verb", None))))
        handler: Callable | None = getattr(args, "handler", None)
        if handler is None:
            make_parser(lazy=True).print_help(out.stderr)
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


def run() -> NoReturn:
    """The `mlops` console script and `python -m mlops`: `main`, then a quick exit.

    Tearing the interpreter down (freeing every module and object) took 6-10 ms
    of a 50-70 ms command (issue 17, benchmarks/README.md). So once `main` has
    returned, the exit handlers run (temporary directories' finalizers and the
    like), stdout and stderr are flushed, and the process ends with `os._exit`.
    Commands write files through `with` blocks and `atomicfile`, never leaving
    a write to the collector. Where a quick exit could lose something (a
    non-daemon thread still running, a stream that will not flush), the
    interpreter exits the usual way. Tests and benchmarks call `main`.
    """
    _collect_less_often()
    code = main()
    _exit_quickly(code)
    raise SystemExit(code)


def _collect_less_often() -> None:
    """Run the cycle collector every 20,000 allocations, not every 700.

    A command is a short process whose objects mostly live until it exits, so
    the default threshold ran the collector about 150 times in a 1,000-image
    promotion (once or twice over every object), 30-50 ms of CPU
    (benchmarks/README.md, "Promotion").
    Garbage cycles are still collected, just in larger batches. Only the
    console script does this: tests and benchmarks that call `main` keep the
    interpreter's own settings.
    """
    import gc

    gc.set_threshold(20_000, 10, 10)


def _exit_quickly(code: int) -> None:
    """`os._exit(code)` after what the usual exit does that matters; returns when unsafe."""
    import atexit
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return  # the usual exit waits for it
    run_handlers = getattr(atexit, "_run_exitfuncs", None)  # what the usual exit calls
    if run_handlers is None:
        return
    run_handlers()  # and forgets them, so the usual exit, if it follows, runs none twice
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return  # a closed pipe: the usual exit reports it as it always has
    os._exit(code)


if __name__ == "__main__":
    run()
