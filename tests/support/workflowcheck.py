"""Checking the shell in workflows and hooks: the linters, zizmor, and `mlops ...` invocations.

`mlops_invocations` finds every `mlops ...` command in a `run:` script through
the shell's syntax (continuations, heredocs, `$(...)`, prefixes such as `if`),
and `check_invocation` checks one against the real argparse tree of
`mlops.cli`. Used by tests/test_workflows.py and tests/test_precommit_hooks.py.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path

from mlops.cli import make_parser
from tests.support.services import require

REPO = Path(__file__).resolve().parents[2]


# -- tools ---------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A console script of this interpreter's environment, else one on PATH."""
    path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    return shutil.which(name, path=path)


def actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    exe = tool("actionlint")
    require(exe is not None, "actionlint not installed (pip install -e '.[test]')")
    return subprocess.run([str(exe), "-no-color", *map(str, files)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def workflow_schema(*files: Path) -> subprocess.CompletedProcess:
    require(importlib.util.find_spec("check_jsonschema") is not None,
            "check-jsonschema not installed (pip install -e '.[test]')")
    # The schema is vendored in the package: no network needed.
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def zizmor(*files: Path, persona: str = "regular",
           cwd: Path = REPO) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """zizmor's findings on these workflow files, offline (no online audits).

    Files, not directories: given a directory, zizmor collects only what is under
    its `.github/workflows/`, which the scaffold's directory is not.
    """
    exe = tool("zizmor")
    require(exe is not None, "zizmor not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [str(exe), "--offline", "--no-config", "--no-progress", "--color", "never",
         "--persona", persona, "--format", "json", *map(str, files)],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_COLOR": "1"})
    # 0: no findings; 10 to 14: findings, by the highest severity; else it failed.
    assert proc.returncode == 0 or 10 <= proc.returncode <= 14, proc.stderr
    return proc, json.loads(proc.stdout)


def finding_lines(findings: list[dict], severity: str) -> list[str]:
    """`path:line: audit: description` for each finding of one severity."""
    lines: list[tuple[str, int, str]] = []
    for f in findings:
        if f["determinations"]["severity"] != severity:
            continue
        where = next((loc for loc in f["locations"] if loc["symbolic"]["kind"] == "Primary"),
                     f["locations"][0])
        path = where["symbolic"]["key"]["Local"]["verbatim_path"]
        row = where["concrete"]["location"]["start_point"]["row"] + 1
        lines.append((path, row, f"{path}:{row}: {f['ident']}: {f['desc']}"))
    return [line for _, _, line in sorted(lines)]


# -- `mlops` invocations in shell scripts ---------------------------------------

SEPARATOR_CHARS = set("();<>|&")
REDIRECTS = {"<", ">", ">>", "<<", "<<<", ">&", "<&", "&>", "&>>", ">|"}
# Words after which the next word is still a command name.
PREFIXES = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "exec",
            "command", "nohup", "sudo", "env"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
HEREDOC = re.compile(r"(?<!<)<<-?(?!<)\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")
GHA_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
FD_REDIRECT = re.compile(r"(?<![\w$])\d+(?=[<>])")


def mlops_invocations(script: str) -> list[list[str]]:
    """The argument lists of every `mlops` command a bash script runs."""
    found: list[list[str]] = []
    for line in logical_lines(GHA_EXPRESSION.sub("GHA_EXPRESSION", script)):
        tokens = tokenize(FD_REDIRECT.sub("", strip_comment(line)))
        found += commands_in(tokens)
        for token in tokens:  # "$(mlops ...)" inside a quoted word
            for inner in substitutions(token):
                found += mlops_invocations(inner)
    return found


def logical_lines(script: str) -> Iterator[str]:
    """Lines with continuations joined and here-document bodies left out."""
    lines = script.replace("\\\n", " ").splitlines()
    i = 0
    while i < len(lines):
        line, i = lines[i], i + 1
        while not balanced(line) and i < len(lines):  # a quoted string over lines
            line, i = f"{line}\n{lines[i]}", i + 1
        yield line
        for delimiter in HEREDOC.findall(line):
            while i < len(lines) and lines[i].strip() != delimiter:
                i += 1
            i += 1


def balanced(line: str) -> bool:
    try:
        tokenize(line)
    except ValueError:
        return False
    return True


def strip_comment(line: str) -> str:
    """The line up to an unquoted `#` that starts a word (not `${x#y}`)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def tokenize(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def commands_in(tokens: Sequence[str]) -> list[list[str]]:
    """Walk the words of one line; collect what follows each `mlops` in command position."""
    found: list[list[str]] = []
    current: list[str] | None = None
    at_start, skip_target = True, False
    for token in tokens:
        if skip_target:
            skip_target = False
        elif token in REDIRECTS:
            skip_target = True
        elif set(token) <= SEPARATOR_CHARS:
            current, at_start = None, True
        elif current is not None:
            current.append(token)
        elif at_start and token == "mlops":
            current, at_start = [], False
            found.append(current)
        elif at_start and (token in PREFIXES or ASSIGNMENT.match(token) or token.startswith("-")):
            continue
        else:
            at_start = False
    return found


def substitutions(token: str) -> Iterator[str]:
    """The scripts inside each `$(...)` of a word."""
    start = token.find("$(")
    while start != -1:
        depth, i = 1, start + 2
        while i < len(token) and depth:
            depth += {"(": 1, ")": -1}.get(token[i], 0)
            i += 1
        yield token[start + 2:i - 1]
        start = token.find("$(", i)


# -- checking an invocation against the parser ----------------------------------


@functools.cache
def parser() -> argparse.ArgumentParser:
    return make_parser()


def subcommands(p: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)


def check_invocation(argv: Sequence[str]) -> list[str]:
    """Problems with `mlops ARGV`: unknown subcommands or flags, missing required ones."""
    p, path = parser(), ["mlops"]
    seen: set[str] = set()
    positionals: list[str] = []
    tokens = list(argv)
    while tokens:
        token = tokens.pop(0)
        if token.startswith("-") and token != "-":
            name, has_value, _ = token.partition("=")
            action = p._option_string_actions.get(name)
            if action is None:
                return [f"{' '.join(path)}: no option {name}"]
            seen.add(action.dest)
            if not has_value:
                del tokens[:values_taken(action, tokens)]
        elif (sub := subcommands(p)) is not None:
            if token not in sub.choices:
                return [f"{' '.join(path)}: no subcommand {token!r}"]
            p, seen, positionals = sub.choices[token], set(), []
            path.append(token)
        else:
            positionals.append(token)
    return missing(p, " ".join(path), seen, positionals)


def values_taken(action: argparse.Action, tokens: Sequence[str]) -> int:
    """How many of the next tokens argparse gives an option as its values: an
    optional value (`--plan [FILE]`) or a list (`--merge [PART ...]`) stops at
    the next option."""
    if action.nargs == argparse.REMAINDER:
        return len(tokens)
    if action.nargs in ("?", "*", "+"):
        n = next((i for i, t in enumerate(tokens) if t.startswith("-") and t != "-"),
                 len(tokens))
        return min(n, 1) if action.nargs == "?" else n
    return min(1 if action.nargs is None else int(action.nargs), len(tokens))


def missing(p: argparse.ArgumentParser, where: str, seen: set[str],
            positionals: list[str]) -> list[str]:
    if seen & {"help", "version"}:
        return []
    if subcommands(p) is not None:
        return [f"{where}: needs a subcommand"]
    problems = [f"{where}: needs {'/'.join(a.option_strings)}" for a in p._actions
                if a.required and a.option_strings and a.dest not in seen]
    problems += [f"{where}: needs one of {', '.join(o for a in g._group_actions for o in a.option_strings)}"
                 for g in p._mutually_exclusive_groups
                 if g.required and not any(a.dest in seen for a in g._group_actions)]
    lo, hi = positional_range(p)
    if not lo <= len(positionals) <= hi:
        problems.append(f"{where}: takes {lo} to {hi} arguments, got {positionals}")
    return problems


def positional_range(p: argparse.ArgumentParser) -> tuple[int, float]:
    actions = [a for a in p._actions if not a.option_strings]
    lo = sum(1 for a in actions if a.nargs in (None, "+"))
    unbounded = any(a.nargs in ("*", "+", argparse.REMAINDER) for a in actions)
    return lo, float("inf") if unbounded else sum(1 for a in actions if a.nargs in (None, "?"))
