"""GitHub Actions workflows and pre-commit hooks: the linters and schema accept
them, and every `mlops ...` they run exists in the real CLI parser.

Both this repository's CI (.github/workflows/) and the templates `mlops init`
copies into new repositories (mlops/scaffold/github/workflows/) are checked.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import yaml

from mlops.cli import make_parser
from tests.support.services import require

REPO = Path(__file__).resolve().parents[1]
CI_DIR = REPO / ".github" / "workflows"
SCAFFOLD_DIR = REPO / "mlops" / "scaffold" / "github" / "workflows"
WORKFLOWS = sorted(p for d in (CI_DIR, SCAFFOLD_DIR) for p in d.glob("*.y*ml"))
DOCS = REPO / "docs" / "github-actions.md"


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
            if action.nargs != 0 and not has_value and tokens:
                tokens.pop(0)
        elif (sub := subcommands(p)) is not None:
            if token not in sub.choices:
                return [f"{' '.join(path)}: no subcommand {token!r}"]
            p, seen, positionals = sub.choices[token], set(), []
            path.append(token)
        else:
            positionals.append(token)
    return missing(p, " ".join(path), seen, positionals)


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


# -- the workflows --------------------------------------------------------------


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def run_blocks(path: Path) -> Iterator[tuple[str, dict, str]]:
    """(job id, job, script) for every `run:` step of a workflow."""
    for job_id, job in load(path)["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                yield job_id, job, step["run"]


def job_invocations(job: dict) -> list[list[str]]:
    return [argv for step in job.get("steps", []) if "run" in step
            for argv in mlops_invocations(step["run"])]


def option(argv: Sequence[str], name: str) -> str | None:
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(f"{name}="):
            return token.split("=", 1)[1]
    return None


def target_environment(argv: Sequence[str]) -> str | None:
    """The environment a command commits into, if it commits (plans and reads do not)."""
    if list(argv[:1]) == ["promote"] and "--plan" not in argv:
        return option(argv, "--to")
    if list(argv[:1]) == ["rollback"] or list(argv[:2]) in [
            ["rollout", verb] for verb in ("start", "promote", "abort", "run")]:
        return option(argv, "--env")
    return None


def workflow_ids() -> list[str]:
    return [str(p.relative_to(REPO)) for p in WORKFLOWS]


def test_both_sets_of_workflows_are_there():
    assert sorted(p.name for p in CI_DIR.glob("*.yml")) == [
        "ci.yml", "main.yml", "prod.yml", "staging.yml"]
    assert sorted(p.name for p in SCAFFOLD_DIR.glob("*.yml")) == [
        "main.yml", "pr.yml", "prod.yml", "staging.yml"]


@pytest.mark.parametrize("name", ["main.yml", "staging.yml", "prod.yml"])
def test_this_repository_delivers_itself_with_the_scaffolds_workflows(name):
    # Its pull requests run ci.yml (the test suite) instead of the scaffold's pr.yml.
    assert (CI_DIR / name).read_bytes() == (SCAFFOLD_DIR / name).read_bytes(), \
        f"copy mlops/scaffold/github/workflows/{name} to .github/workflows/"


def test_actionlint_accepts_this_repositorys_workflows():
    proc = actionlint(*sorted(CI_DIR.glob("*.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_accepts_the_scaffold_where_mlops_init_puts_it(tmp_path):
    # In place, `uses: ./.github/workflows/staging.yml` is checked against the real file.
    shutil.copytree(SCAFFOLD_DIR, tmp_path / ".github" / "workflows")
    proc = actionlint(*sorted((tmp_path / ".github" / "workflows").glob("*.yml")), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/upload-artifact@v6\n        with: {nme: x}\n")
    proc = actionlint(bad, cwd=tmp_path)
    assert proc.returncode == 1 and "nme" in proc.stdout


def test_every_workflow_matches_the_github_workflow_schema():
    proc = workflow_schema(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_an_unknown_event(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pushh\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps: [{run: 'true'}]\n")
    assert workflow_schema(bad).returncode == 1


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_ids())
def test_every_mlops_invocation_exists_in_the_cli(path):
    invocations = [(job, argv) for job, _, script in run_blocks(path)
                   for argv in mlops_invocations(script)]
    assert invocations, f"{path.name}: no mlops invocation found"
    problems = [f"job {job}: mlops {shlex.join(argv)}: {problem}"
                for job, argv in invocations for problem in check_invocation(argv)]
    assert problems == []


@pytest.mark.parametrize("script, expected", [
    ("mlops build \\\n  --changed-since origin/main --no-push",
     [["build", "--changed-since", "origin/main", "--no-push"]]),
    ('x=$(mlops status --env prod --json) || true', [["status", "--env", "prod", "--json"]]),
    ('echo "uri=$(mlops history --env prod | head -1)"', [["history", "--env", "prod"]]),
    ("mlops validate && mlops build --dry-run | tee plan.txt",
     [["validate"], ["build", "--dry-run"]]),
    ("mlops run t --env dev --local --json > run.json 2>&1; echo done",
     [["run", "t", "--env", "dev", "--local", "--json"]]),
    ('if [[ "$A" == true ]]; then\n  mlops rollout start --env prod --clear-hold\nfi',
     [["rollout", "start", "--env", "prod", "--clear-hold"]]),
    ("cat <<EOF\nmlops fake --flag\nEOF\nFOO=1 mlops validate", [["validate"]]),
    ("grep -q x <<< \"$y\"\nmlops validate", [["validate"]]),
    ('sudo -E env "PATH=$PATH" mlops build --no-push', [["build", "--no-push"]]),
    ("echo 'mlops is not run here' # nor mlops here\necho ${x#mlops}", []),
    ('mlops promote --to dev --reason "a; b || c"\n', [["promote", "--to", "dev",
                                                        "--reason", "a; b || c"]]),
    ("mlops rollout run --env ${{ inputs.env || 'prod' }}",
     [["rollout", "run", "--env", "GHA_EXPRESSION"]]),
])
def test_invocations_are_found_through_shell_syntax(script, expected):
    assert mlops_invocations(script) == expected


@pytest.mark.parametrize("argv", [
    ["build", "--changed-since", "origin/main", "--no-push"],
    ["build", "--push", "--output=build.json"],
    ["rollout", "run", "--env", "prod", "--wait-approval", "--timeout", "1h"],
    ["promote", "--to", "staging", "--from", "dev", "--metrics", "m.json"],
    ["run", "training", "--env", "dev", "--local"],
    ["--version"],
])
def test_the_checker_accepts_real_invocations(argv):
    assert check_invocation(argv) == []


@pytest.mark.parametrize("argv, problem", [
    (["build", "--no-such-flag"], "no option --no-such-flag"),
    (["rollout", "frobnicate", "--env", "prod"], "no subcommand 'frobnicate'"),
    (["deploy"], "no subcommand 'deploy'"),
    (["rollout", "analyze"], "needs --env"),
    (["rollout"], "needs a subcommand"),
    (["promote", "--to", "dev"], "needs one of --build, --from"),
    (["run", "--env", "dev", "--local"], "takes 1 to 1 arguments"),
    (["status", "--env", "prod", "extra"], "takes 0 to 0 arguments"),
    (["--json", "build"], "no option --json"),
])
def test_the_checker_rejects_made_up_or_incomplete_invocations(argv, problem):
    problems = check_invocation(argv)
    assert problems and problem in problems[0]


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_ids())
def test_promotions_queue_per_environment_and_can_push(path):
    for job_id, job in load(path)["jobs"].items():
        envs = {e for argv in job_invocations(job) if (e := target_environment(argv))}
        if not envs:
            continue
        assert len(envs) == 1, f"{job_id} commits into several environments: {envs}"
        env = envs.pop()
        assert job.get("concurrency") == {"group": f"mlops-promote-{env}",
                                          "cancel-in-progress": False}, job_id
        assert job.get("permissions", {}).get("contents") == "write", job_id
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
        assert checkout.get("with", {}).get("fetch-depth") == 0, job_id
        assert any("credential approve" in script and "user.email" in script
                   for j, _, script in run_blocks(path) if j == job_id), job_id


def test_the_prod_canary_runs_in_a_protected_environment():
    job = load(SCAFFOLD_DIR / "prod.yml")["jobs"]["canary"]
    assert job["environment"] == "prod"
    commands = [argv[:2] for argv in job_invocations(job)]
    for expected in (["rollout", "start"], ["status", "--env"], ["rollout", "run"],
                     ["rollout", "abort"]):
        assert expected in commands


def test_local_reusable_workflows_exist():
    for path in WORKFLOWS:
        for job in load(path)["jobs"].values():
            uses = job.get("uses", "")
            if uses.startswith("./.github/workflows/"):
                assert (path.parent / Path(uses).name).is_file(), uses


def test_the_docs_name_every_workflow_secret_variable_and_input():
    text = DOCS.read_text()
    names = set()
    for path in SCAFFOLD_DIR.glob("*.yml"):
        source = path.read_text()
        names |= {path.name} | set(re.findall(r"\b(?:secrets|vars)\.([A-Z0-9_]+)", source))
        for trigger in (load(path).get(True) or {}).values():  # yaml reads `on:` as True
            names |= set((trigger or {}).get("inputs") or {})
    undocumented = sorted(n for n in names if f"`{n}`" not in text)
    assert undocumented == []


# -- pre-commit -------------------------------------------------------------------


def test_the_hook_manifest_loads_and_runs_a_real_subcommand():
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(REPO / ".pre-commit-hooks.yaml")
    assert (hook["id"], hook["language"], hook["pass_filenames"]) == (
        "mlops-validate", "python", False)
    word, *argv = shlex.split(hook["entry"])
    assert word == "mlops" and check_invocation(argv) == [] and argv == ["validate"]
    files = re.compile(hook["files"])
    for path in ("mlops.yaml", "components/train/component.yaml", "pipelines/training.py",
                 "environments/prod/kustomization.yaml"):
        assert files.search(path), path
    for path in ("README.md", "mlops.yaml.bak", "docs/environments/x.md"):
        assert not files.search(path), path


def test_this_repositorys_hooks_load_and_run_installed_tools():
    from pre_commit.clientlib import load_config

    hooks = [h for repo in load_config(REPO / ".pre-commit-config.yaml")["repos"]
             for h in repo["hooks"]]
    assert {h["id"] for h in hooks} >= {"ruff", "mypy", "mlops-validate"}
    for hook in hooks:
        # Offline: no hook environments. pre-commit 4 reads `system` as `unsupported`.
        assert hook["language"] in ("system", "unsupported"), hook["id"]
        word, *argv = shlex.split(hook["entry"])
        assert tool(word), f"{hook['id']}: {word} is not installed by .[test]"
        if word == "mlops":
            assert check_invocation(argv) == []


@pytest.mark.slow
def test_the_hook_installs_and_runs_from_a_repository(tmp_path):
    """`pre-commit try-repo` builds mlops into its own environment (PyPI only)."""
    require(tool("kubectl") is not None, "kubectl not installed")
    hook_repo = snapshot(REPO, tmp_path / "hook-repo")
    target = tmp_path / "target"
    files = {"mlops.yaml": "registry: 127.0.0.1:5000/x\nenvironments:\n  - name: dev\n",
             "environments/dev/kustomization.yaml":
                 "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                 "resources: [configmap.yaml]\n",
             "environments/dev/configmap.yaml":
                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}
    commit_files(target, files)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    try_repo = [str(tool("pre-commit")), "try-repo", str(hook_repo), "mlops-validate",
                "--all-files"]
    ok = subprocess.run(try_repo, cwd=target, env=env, capture_output=True, text=True,
                        timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    commit_files(target, {"mlops.yaml": "registry: 127.0.0.1:5000/x\nenvironmentz: []\n"})
    bad = subprocess.run(try_repo, cwd=target, env=env, capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode == 1 and "environmentz" in bad.stdout


def snapshot(source: Path, dest: Path) -> Path:
    """A one-commit repository of `source`'s files, committed or not (gitignore honoured)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=source, capture_output=True, text=True, check=True).stdout
    files = {}
    for rel in filter(None, listed.split("\0")):
        if (source / rel).is_file():
            files[rel] = (source / rel).read_bytes()
    return commit_files(dest, files)


def commit_files(path: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, content in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    if not (path / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.test", "commit",
                    "-q", "-m", "files"], cwd=path, check=True)
    return path
