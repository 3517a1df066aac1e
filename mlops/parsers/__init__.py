"""Argument parsers, one module per group of subcommands; `mlops.cli` wires them up.

Each module has `register(sub)`, listing its subcommands with `sub.lazy`: the
one-line help now, the parser (built by a function of the module) only when the
command line names it, and a handler that imports the command module only when
it runs. So `mlops --help` builds no subcommand's parser and imports no command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_CODES_HELP = """exit codes:
  0  success
  1  error
  2  usage (bad arguments, unknown component or environment on the command line)
  3  gate failed
  4  approval missing or invalid
  5  analysis inconclusive (hold)
"""


class Subcommands(argparse._SubParsersAction):
    """Subcommands whose parsers are built when first used.

    `lazy(name, help, define)` lists a subcommand (its line in `--help`, a valid
    choice) and keeps `define(sub)`, which adds its parser with `add`, for when
    the command line names it. `define_all` builds every one (for code that reads
    the parsers instead of parsing with them).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Callable[[Subcommands], None]] = {}

    def lazy(self, name: str, help: str, define: Callable[[Subcommands], None]) -> None:
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self._name_parser_map[name] = None  # a choice now, in the order listed; a parser later
        self._pending[name] = define

    def add_parser(self, name: str, **kwargs):
        if self._pending.pop(name, None) is None:
            return super().add_parser(name, **kwargs)
        kwargs.setdefault("prog", f"{self._prog_prefix} {name}")
        parser = self._parser_class(**kwargs)  # listed by `lazy` already
        self._name_parser_map[name] = parser
        return parser

    def define(self, name: str) -> argparse.ArgumentParser:
        if name in self._pending:
            self._pending[name](self)
        return self._name_parser_map[name]

    def define_all(self) -> None:
        for name in list(self._pending):
            self.define(name)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        self.define(values[0])  # a valid choice: argparse checked it against the listing
        super().__call__(parser, namespace, values, option_string)


def add(sub: argparse._SubParsersAction, name: str, description: str,
        help: str | None = None):
    """A subcommand parser with the shared epilog and formatting (`help`: its line in the
    listing, for a subcommand not listed with `Subcommands.lazy`)."""
    listing: dict[str, Any] = {} if help is None else {"help": help}
    return sub.add_parser(name, description=description, epilog=EXIT_CODES_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter, **listing)


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


def content_digest(text: str) -> str:
    from mlops.names import DIGEST

    if not DIGEST.match(text):
        raise argparse.ArgumentTypeError(f"expected sha256:<64 hex>, got {text!r}")
    return text


def principal(text: str) -> str:
    """A name in the allowed-signers file: it becomes a commit trailer, so one plain token."""
    if not text or any(c.isspace() or c == "," or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(f"expected one principal (no spaces, commas or "
                                          f"control characters), got {text!r}")
    return text


def shard_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shard number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("shards are numbered from 0")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
