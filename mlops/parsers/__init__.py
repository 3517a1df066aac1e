"""Argument parsers, one module per group of subcommands; `mlops.cli` wires them up.

Each module has `register(sub)`, adding its subcommands with a handler that
imports the command module only when it runs, so `mlops --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_CODES_HELP = """exit codes:
  0  success
  1  error
  2  usage (bad arguments, unknown component or environment on the command line)
  3  gate failed
  4  approval missing or invalid
  5  analysis inconclusive (hold)
"""



def add(sub: argparse._SubParsersAction, name: str, help: str, description: str):
    """A subcommand parser with the shared epilog and formatting."""
    return sub.add_parser(name, help=help, description=description, epilog=EXIT_CODES_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--repo", metavar="DIR", type=Path, help="repository (default: git root of the cwd)"
    )
    group.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    group.add_argument("-v", "--verbose", action="store_true", help="show full build logs")


def trust_root(parser: argparse.ArgumentParser) -> None:
    """`--trust-root FILE`: the same as $MLOPS_TRUST_ROOT, for commands that check approvals
    or provenance. It goes into the command's environment (see `mlops.cli`)."""
    parser.add_argument(
        "--trust-root", metavar="FILE", type=Path,
        help="trust root pinned outside the branch (allowed signers, release managers, "
             "builders; default: $MLOPS_TRUST_ROOT, else settled over the branch's history)")


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def release_id(text: str) -> str:
    from mlops.names import RELEASE_ID

    if not RELEASE_ID.match(text):
        raise argparse.ArgumentTypeError(f"expected a release id like r-1a2b3c4d5e6f, "
                                          f"got {text!r}")
    return text


def principal(text: str) -> str:
    """A name in the allowed-signers file: it becomes a commit trailer, so one plain token."""
    if not text or any(c.isspace() or c == "," or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(f"expected one principal (no spaces, commas or "
                                          f"control characters), got {text!r}")
    return text


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
