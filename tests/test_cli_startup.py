"""What `mlops --help` and the parser load (issue 17: start-up within 1.5x of a bare
interpreter, measured by benchmarks/startup.py; no timing is asserted here).

Building the parser imports argparse and the parser modules only: no command,
service or adapter module and no SDK. `main` builds a subcommand's parser only
when the command line names it, and that lazy parser must be the whole parser,
help text and parsed values alike.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from mlops import cli, parsers

# Modules that building the parser must not load: what the commands run on.
NOT_FOR_THE_PARSER = ("mlops.commands", "mlops.services", "mlops.adapters", "mlops.config",
                      "mlops.ci.github", "mlops.ci.gitlab", "docker", "requests", "urllib3",
                      "kfp", "kubernetes", "git", "yaml", "ruamel", "tenacity", "jsonschema")


MARK = "--- modules:"


def loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint('{MARK}', *sys.modules)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.rpartition(MARK)[2].split())  # after what the code printed


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == h or m.startswith(h + ".") for h in NOT_FOR_THE_PARSER))


@pytest.mark.parametrize("code", [
    "import mlops.cli; mlops.cli.make_parser()",
    "import mlops.cli; mlops.cli.make_parser(lazy=True)",
    "import mlops.cli\ntry:\n    mlops.cli.main(['--help'])\nexcept SystemExit:\n    pass",
    "import mlops.cli\ntry:\n    mlops.cli.main(['build', '--help'])\nexcept SystemExit:\n"
    "    pass",
    "import mlops.cli\ntry:\n    mlops.cli.main(['rollout', 'start', '--help'])\n"
    "except SystemExit:\n    pass",
], ids=["whole parser", "lazy parser", "--help", "build --help", "rollout start --help"])
def test_the_parser_loads_no_command_service_or_sdk(code):
    modules = loaded_by(code)
    assert "mlops.parsers.delivery" in modules  # the probe did build the parser
    assert heavy(modules) == []


def test_json_is_loaded_only_to_print_json():
    assert "json" not in loaded_by("import mlops.cli; mlops.cli.make_parser()\n"
                                   "from mlops.output import Output; Output().result({}, 'x')")


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_main_builds_only_the_named_subcommand():
    parser = cli.make_parser(lazy=True)
    sub = subcommands(parser)
    assert all(p is None for p in sub.choices.values())  # listed, none built yet
    args = parser.parse_args(["build", "--dry-run"])
    assert args.dry_run and args.handler is not None
    assert [name for name, p in sub.choices.items() if p is not None] == ["build"]


def every_help(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict:
    """{command words: help text} of the parser and each subcommand, built as reached."""
    texts = {prefix: parser.format_help()}
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for sub in found:
        for name in list(sub.choices):
            child = sub.define(name) if hasattr(sub, "define") else sub.choices[name]
            texts.update(every_help(child, (*prefix, name)))
    return texts


def test_the_lazy_parser_is_the_whole_parser():
    whole, lazy = every_help(cli.make_parser()), every_help(cli.make_parser(lazy=True))
    assert len(whole) >= 18  # mlops, 11 commands, 6 rollout verbs
    assert lazy == whole
    assert list(subcommands(cli.make_parser(lazy=True)).choices) == list(
        subcommands(cli.make_parser()).choices)


@pytest.mark.parametrize("argv", [
    ["build", "a", "--dry-run", "--build-arg", "K=V", "-j", "3", "--json"],
    ["promote", "--to", "dev", "--build", "b.json", "--plan"],
    ["rollout", "promote", "--env", "prod", "--max-age", "2h"],
    ["status", "--env", "dev", "--wait", "--timeout", "5"],
    ["init", "x", "--ci", "gitlab"],
])
def test_lazy_and_whole_parsers_parse_alike(argv):
    lazy = vars(cli.make_parser(lazy=True).parse_args(argv))
    whole = vars(cli.make_parser().parse_args(argv))
    assert lazy.keys() == whole.keys()
    assert {k: v for k, v in lazy.items() if k != "handler"} == \
        {k: v for k, v in whole.items() if k != "handler"}
    assert lazy["handler"].__qualname__ == whole["handler"].__qualname__


def test_an_unknown_command_lists_every_command_in_order(capsys):
    assert cli.main(["bogus"]) == 2
    err = capsys.readouterr().err
    assert ("invalid choice: 'bogus' (choose from 'build', 'compile', 'run', 'runs', 'promote', "
            "'approve', 'history', 'rollback', 'rollout', 'status', 'validate', 'init')") in err


def test_main_never_builds_the_whole_parser(monkeypatch, capsys):
    def whole(self):
        raise AssertionError("main built every subcommand's parser")

    monkeypatch.setattr(parsers.Subcommands, "define_all", whole)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert cli.main(["build", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
