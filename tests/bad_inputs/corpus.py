"""The bad-input corpus: one `Case` per broken input, and the one check every case gets.

A case names the world it breaks (`bare`, `staged` or `canary`, see conftest.py),
a setup that breaks it, the command line, the exit code and a fragment of the
one-line error. `check` then proves the three promises of README "Exit codes":

1. the documented exit code;
2. exactly one line on stderr, `mlops: error: ...`, holding the fragment (no
   traceback: in-process an uncaught exception fails the test by itself);
3. nothing changed: work tree, remote refs, registry tags, temp dirs
   (`tests/support/untouched.py`), taken after the setup and after the command.

`mlops validate` reports problems on stdout, one line each, by design; its
cases (`channel="validate"`) assert exactly one problem in its JSON report.
Cases that could hang or eat memory if the product regressed (YAML bombs) run
as a real `python -m mlops` process with a time and memory limit instead
(`process=True`), so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops.cli import main
from tests.conftest import Result
from tests.support.untouched import Snapshot

PROCESS_TIMEOUT = 60  # seconds; a YAML bomb that is not refused runs far longer
PROCESS_MEMORY = 3 << 30  # bytes of address space; a bomb that expands needs far more

Setup = Callable[[Any], Any]  # breaks the world; a mapping it returns is environment variables


def nothing(world: Any) -> None:
    """The setup of a case whose only bad input is its command line."""
    return None


@dataclass(frozen=True)
class Case:
    id: str
    world: str  # the fixture the case breaks: bare | staged | canary
    setup: Setup  # breaks the world; may return environment variables (None: unset them)
    argv: Sequence[str]  # `{base}`, `{clone}`, `{ids[env]}` filled in; `--repo {clone}` added
    code: int
    message: str
    channel: str = "stderr"  # or "validate": one problem in `mlops validate --json`
    repo: bool = True  # add `--repo {clone}` (not for `mlops init`)
    process: bool = False  # run as a limited child process (YAML bombs)
    extra: tuple[str, ...] = field(default=())  # more folders to snapshot, under {base}


def params(cases: Sequence[Case]) -> Any:
    """`pytest.mark.parametrize` over cases, with each case's readable id."""
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return pytest.mark.parametrize("case", cases, ids=ids)


def check(world: Any, case: Case, capsys: pytest.CaptureFixture[str]) -> Result:
    returned = case.setup(world)  # environment variables, if a mapping
    env = dict(returned) if isinstance(returned, Mapping) else {}
    argv = [a.format(base=world.base, clone=world.clone, ids=world.ids()) for a in case.argv]
    if case.repo:
        argv += ["--repo", str(world.clone)]
    extra = tuple(world.base / e for e in case.extra)
    before = _snapshot(world, extra)
    result = _run_child(argv, env) if case.process else _run_here(argv, env, capsys, world)
    after = _snapshot(world, extra)
    assert result.code == case.code, f"exit {result.code}, wanted {case.code}: {result.err}"
    if case.channel == "validate":
        _one_problem(result, case.message)
    else:
        _one_error_line(result, case.message)
    before.assert_same(after)
    return result


def _snapshot(world: Any, extra: tuple[Path, ...]) -> Snapshot:
    return Snapshot.take(repo=world.clone, remote=world.remote, registry=world.server,
                         extra=extra)


def _one_error_line(result: Result, message: str) -> None:
    assert "Traceback" not in result.err, result.err
    assert result.err.count("\n") == 1 and result.err.endswith("\n"), \
        f"not exactly one line on stderr:\n{result.err}"
    assert result.err.startswith("mlops: error: "), result.err
    assert message in result.err, f"{message!r} not in {result.err!r}"


def _one_problem(result: Result, message: str) -> None:
    """`mlops validate --json`: one problem, one line, and nothing on stderr."""
    assert result.err == "", result.err
    problems = json.loads(result.out)["problems"]
    assert len(problems) == 1, problems
    line = problems[0]["message"]
    assert "\n" not in line and message in line, f"{message!r} not in {line!r}"


def _run_here(argv: list[str], env: Mapping[str, str | None], capsys, world) -> Result:
    capsys.readouterr()
    with world.monkeypatch.context() as m:
        for key, value in env.items():
            if value is None:
                m.delenv(key, raising=False)
            else:
                m.setenv(key, value)
        code = main(argv)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (PROCESS_MEMORY, PROCESS_MEMORY))


def _run_child(argv: list[str], env: Mapping[str, str | None]) -> Result:
    child_env = {k: v for k, v in os.environ.items() if k not in env or env[k] is not None}
    child_env.update({k: v for k, v in env.items() if v is not None})
    try:
        proc = subprocess.run([sys.executable, "-m", "mlops", *argv], capture_output=True,
                              text=True, env=child_env, timeout=PROCESS_TIMEOUT,
                              preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mlops {' '.join(argv[:3])} ran for over {PROCESS_TIMEOUT}s", pytrace=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


# -- setups shared by the modules ----------------------------------------------

# Nine anchors of nine aliases each: 9**9 strings if anything expands it.
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True))


def committed(files: Mapping[str, str | bytes | None]) -> Setup:
    """A setup that commits `files` in the clone (local config is read before any clone)."""
    return lambda world: world.commit(files)


def pushed(files: Mapping[str, str | bytes | None]) -> Setup:
    """A setup that commits and pushes `files` (promotions read the remote branch)."""
    return lambda world: world.push(files)


def appended(rel: str, text: str, push: bool = False) -> Setup:
    def setup(world: Any) -> None:
        files = {rel: world.text(rel) + text}
        (world.push if push else world.commit)(files)
    return setup


def replaced(rel: str, old: str, new: str, push: bool = False) -> Setup:
    return lambda world: world.edit(rel, old, new, push=push)


def with_input(name: str, content: str | bytes) -> Setup:
    """A setup that writes a file outside the repository, as `{base}/name`."""
    return lambda world: world.input(name, content)


FAKE_DIGEST = "sha256:" + "e" * 64  # well formed, and in no registry


def build_record(world: Any, name: str = "build.json",
                 edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A build record for the world's components, as `mlops build --output` writes it.

    The digests are well formed but were never pushed: cases that need real
    digests use the `staged` world, which promoted real ones."""
    builds = [{"component": c, "version": "0.1.0", "image": f"{world.ns}/{c}",
               "tags": ["0.1.0"], "digest": FAKE_DIGEST, "input_hash": "0" * 64,
               "built": True, "pushed": True, "status": "built"}
              for c in ("evaluate", "preprocess", "train")]
    record = {"source_commit": world.git("rev-parse", "HEAD"), "registry": world.ns,
              "builds": builds}
    if edit is not None:
        edit(record)
    return world.input(name, json.dumps(record))
