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


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
