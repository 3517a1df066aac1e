"""A small emulator of one GitHub Actions job on an ubuntu runner, to run our workflows.

Linting proves a workflow is well formed, not that its scripts work. This runs a
job's steps the way the runner does: `${{ }}` expressions evaluated from the
contexts a test gives (an expression it does not know raises, so a changed
workflow fails the tests loudly), `if:` conditions, env at three levels, the
GITHUB_OUTPUT/ENV/PATH/STEP_SUMMARY files between steps, and `run:` scripts in
bash on a PATH that holds only the tools named (nothing of the test machine's
environment leaks in). The few actions our workflows use are emulated: checkout
(a clone of a local bare remote), setup-python (no-op: python is on PATH),
upload/download-artifact (a directory per artifact name).
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.ghexpr import (
    EMBEDDED,
    STATUS,
    Evaluator,
    ExpressionError,
    Nullable,
    one_expression,
    to_str,
)

# -- the runner's files and shell -------------------------------------------------

def read_command_file(path: Path) -> dict[str, str]:
    """`name=value` and `name<<DELIM ... DELIM` lines, as GITHUB_OUTPUT and GITHUB_ENV hold."""
    values, lines = {}, path.read_text().splitlines() if path.exists() else []
    while lines:
        line = lines.pop(0)
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body = []
            while lines and lines[0] != delim:
                body.append(lines.pop(0))
            if not lines:
                raise ExpressionError(f"{path.name}: no closing {delim!r} for {name}")
            lines.pop(0)
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        elif line.strip():
            raise ExpressionError(f"{path.name}: invalid line {line!r}")
    return values


def shell_argv(shell: str | None, script: Path) -> list[str]:
    """The runner's templates: unspecified is `bash -e {0}` (no pipefail: the runner's
    real default, github/docs#18933); `shell: bash` adds --noprofile --norc -o pipefail."""
    templates = {None: "bash -e {0}", "bash": "bash --noprofile --norc -eo pipefail {0}",
                 "sh": "sh -e {0}", "python": "python {0}"}
    template = templates.get(shell, shell) or ""
    if "{0}" not in template:
        raise ExpressionError(f"shell {shell!r} is not emulated")
    return [str(script) if part == "{0}" else part for part in template.split()]


# -- a job ------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    outcome: str  # success, failure or skipped
    code: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass
class Job:
    result: str
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    workspace: Path | None = None
    temp: Path | None = None
    summary: str = ""

    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.outcome == "failure"]

    def log(self) -> str:
        return "\n".join(f"--- {s.name}: {s.outcome} ({s.code})\n{s.stdout}{s.stderr}"
                         for s in self.steps)


def load_workflow(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


def input_defaults(workflow: dict) -> dict[str, Any]:
    """`inputs` as GitHub fills it: each declared input's default."""
    triggers = workflow["on"] if isinstance(workflow["on"], dict) else {}
    return {name: spec.get("default") for trigger in triggers.values()
            for name, spec in ((trigger or {}).get("inputs") or {}).items()}


class Runner:
    """One workflow run: `run_job` runs one job; jobs of a run share `artifacts`."""

    def __init__(self, root: Path, remote: Path, tools: Mapping[str, str | Path],
                 github: Mapping[str, Any], vars: Mapping[str, str] | None = None,
                 secrets: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None):
        self.root, self.remote, self.github = root, remote, dict(github)
        self.vars, self.secrets = Nullable(vars or {}), Nullable(secrets or {})
        self.extra_env = dict(env or {})  # variables the runner image itself sets
        self.artifacts = root / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.bin = root / "bin"
        self.bin.mkdir(exist_ok=True)
        for name, target in tools.items():
            (self.bin / name).unlink(missing_ok=True)
            (self.bin / name).symlink_to(target)

    def run_job(self, workflow: dict, job_id: str, *, inputs: Mapping[str, Any] | None = None,
                needs: Mapping[str, Any] | None = None, matrix: Mapping[str, Any] | None = None,
                label: str | None = None) -> Job:
        job = workflow["jobs"][job_id]
        if "steps" not in job:
            raise ExpressionError(f"job {job_id} has no steps (a reusable workflow call?)")
        label = label or job_id
        base = self.root / "jobs" / label
        temp, home, work = base / "temp", base / "home", base / "work"
        for d in (temp, home, work):
            d.mkdir(parents=True)
        given = dict(inputs or {})
        unknown = set(given) - set(input_defaults(workflow))
        if unknown:
            raise ExpressionError(f"inputs not declared by the workflow: {sorted(unknown)}")
        needs = {k: {"result": v.get("result", "success"), "outputs": Nullable(v.get("outputs", {}))}
                 for k, v in (needs or {}).items()}
        ctx: dict[str, Any] = {
            "github": {**self.github, "job": job_id, "workspace": str(work)},
            "vars": self.vars, "secrets": self.secrets,
            "inputs": {**input_defaults(workflow), **given}, "needs": needs,
            "matrix": dict(matrix or {}), "runner": {"temp": str(temp), "os": "Linux"},
            "steps": {}}
        state = {"failed": False}
        functions = self.functions(ctx, state, work)
        if "if" in job and not self.condition(job["if"], ctx, functions, job_level=True):
            return Job("skipped")
        env = {**self.render_env(workflow.get("env"), ctx, functions),
               **self.render_env(job.get("env"), ctx, functions)}
        run: dict[str, Any] = {"env": {}, "path": [], "temp": temp, "job": job_id, "home": home, "work": work,
               "defaults": (job.get("defaults") or {}).get("run") or {}}
        result = Job("success", workspace=work, temp=temp)
        for index, step in enumerate(job["steps"]):
            name = self.render(step.get("name", step.get("uses") or step["run"].splitlines()[0]),
                               ctx, functions)
            if not self.condition(step.get("if", "success()"), ctx, functions):
                result.steps.append(Step(name, "skipped"))
                self.record(ctx, step, "skipped", {})
                continue
            outcome = self.run_step(step, index, name, ctx, functions, env, run, result)
            state["failed"] |= outcome.outcome == "failure"
        if state["failed"]:
            result.result = "failure"
        result.outputs = {k: to_str(self.render(v, ctx, functions))
                          for k, v in (job.get("outputs") or {}).items()}
        return result

    # expressions

    def functions(self, ctx: dict, state: dict, work: Path) -> dict[str, Any]:
        def hash_files(*patterns: str) -> str:
            files = sorted({p for pattern in patterns for p in work.glob(pattern) if p.is_file()})
            if not files:
                return ""
            digest = hashlib.sha256()
            for f in files:
                digest.update(hashlib.sha256(f.read_bytes()).digest())
            return digest.hexdigest()
        return {"success": lambda: not state["failed"], "failure": lambda: state["failed"],
                "always": lambda: True, "cancelled": lambda: False,
                "fromJSON": lambda s: json.loads(s), "hashFiles": hash_files}

    def evaluate(self, text: str, ctx: dict, functions: dict) -> Any:
        return Evaluator(text, ctx, functions).evaluate()

    def render(self, value: Any, ctx: dict, functions: dict) -> Any:
        """`${{ }}` in a value: a string that is one expression keeps its type (a
        matrix from fromJSON), others are interpolated as text."""
        if isinstance(value, dict):
            return {k: self.render(v, ctx, functions) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, ctx, functions) for v in value]
        if not isinstance(value, str):
            return value
        whole = one_expression(value)
        if whole is not None:
            return self.evaluate(whole, ctx, functions)
        return EMBEDDED.sub(lambda m: to_str(self.evaluate(m[1], ctx, functions)), value)

    def condition(self, text: Any, ctx: dict, functions: dict, job_level: bool = False) -> bool:
        """An `if:`; without a status function GitHub prepends `success() &&`, which for a
        job means every job it needs succeeded."""
        if isinstance(text, bool):
            text = to_str(text)
        text = str(text).strip()
        whole = one_expression(text)
        text = whole if whole is not None else text
        if "${{" in text:
            raise ExpressionError(f"a condition mixing text and ${{{{ }}}}: {text!r}")
        value = self.evaluate(text, ctx, functions)
        if STATUS.search(text):
            if job_level and re.search(r"\b(success|failure)\s*\(", text):
                raise ExpressionError(f"job-level {text!r} is not emulated")
            return bool(value)
        if job_level:
            return all(n["result"] == "success" for n in ctx["needs"].values()) and bool(value)
        return functions["success"]() and bool(value)

    def render_env(self, env: Any, ctx: dict, functions: dict) -> dict[str, str]:
        return {k: to_str(self.render(v, ctx, functions)) for k, v in (env or {}).items()}

    # steps

    def record(self, ctx: dict, step: dict, outcome: str, outputs: dict) -> None:
        if "id" in step:
            ctx["steps"][step["id"]] = {"outcome": outcome, "conclusion": outcome,
                                        "outputs": Nullable(outputs)}

    def run_step(self, step: dict, index: int, name: str, ctx: dict, functions: dict,
                 job_env: dict, run: dict, result: Job) -> Step:
        files = {k: run["temp"] / f"_{k.lower()}_{index}" for k in
                 ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")}
        for f in files.values():
            f.touch()
        env = {**job_env, **run["env"], **self.render_env(step.get("env"), ctx, functions)}
        if "uses" in step:
            done = self.action(step, name, ctx, functions, run)
        else:
            done = self.script(step, name, ctx, functions, env, run, files)
        outputs = read_command_file(files["GITHUB_OUTPUT"])
        run["env"].update(read_command_file(files["GITHUB_ENV"]))
        run["path"][:0] = reversed(files["GITHUB_PATH"].read_text().splitlines())
        result.summary += files["GITHUB_STEP_SUMMARY"].read_text()
        self.record(ctx, step, done.outcome, outputs)
        result.steps.append(done)
        return done

    def script(self, step: dict, name: str, ctx: dict, functions: dict, env: dict, run: dict,
               files: dict[str, Path]) -> Step:
        script = run["temp"] / f"{uuid.uuid4()}.sh"
        script.write_text(self.render(step["run"], ctx, functions))
        cwd = run["work"]
        where = step.get("working-directory", run["defaults"].get("working-directory"))
        if where:
            cwd = cwd / self.render(where, ctx, functions)
        shell = step.get("shell", run["defaults"].get("shell"))
        argv = shell_argv(shell, script)
        full_env = {**self.runner_env(run), **{k: v for k, v in env.items()}}
        full_env.update({k: str(v) for k, v in files.items()})
        full_env["PATH"] = os.pathsep.join([*run["path"], str(self.bin)])
        exe = shutil.which(argv[0], path=full_env["PATH"])
        if exe is None:
            return Step(name, "failure", 127, "", f"{argv[0]}: not on the runner's PATH\n")
        proc = subprocess.run([exe, *argv[1:]], cwd=cwd, env=full_env, capture_output=True,
                              text=True, timeout=600, stdin=subprocess.DEVNULL)
        return Step(name, "success" if proc.returncode == 0 else "failure", proc.returncode,
                    proc.stdout, proc.stderr)

    def runner_env(self, run: dict) -> dict[str, str]:
        """What the runner sets for every step (GitHub's default environment variables)."""
        g = self.github
        return {**self.extra_env, "HOME": str(run["home"]), "CI": "true",
                "GITHUB_ACTIONS": "true", "LANG": "C.UTF-8", "RUNNER_OS": "Linux",
                "RUNNER_TEMP": str(run["temp"]), "GITHUB_WORKSPACE": str(run["work"]),
                "GITHUB_JOB": run["job"], **{f"GITHUB_{k.upper()}": to_str(v)
                                             for k, v in g.items() if k != "token"}}

    # actions

    def action(self, step: dict, name: str, ctx: dict, functions: dict, run: dict) -> Step:
        uses, args = step["uses"], self.render(step.get("with") or {}, ctx, functions)
        handlers = {"actions/checkout": self.checkout, "actions/setup-python": lambda a, r: "",
                    "actions/upload-artifact": self.upload,
                    "actions/download-artifact": self.download}
        handler = handlers.get(uses.split("@")[0])
        if handler is None:
            raise ExpressionError(f"action {uses} is not emulated")
        try:
            return Step(name, "success", 0, handler(args, run) or "")
        except (StepFailed, subprocess.CalledProcessError) as e:
            return Step(name, "failure", 1, "", f"{e}\n")

    def checkout(self, args: dict, run: dict) -> str:
        """A clone of the remote: `fetch-depth` commits (1 unless given; 0 is all), of
        `ref` if given, else of the event's branch at github.sha."""
        depth = int(args.get("fetch-depth", 1))
        ref = str(args.get("ref") or self.github["ref_name"])
        clone = ["git", "clone", "-q", "--no-tags"]
        if depth:
            clone += ["--depth", str(depth), "--branch", ref]
        subprocess.run([*clone, f"file://{self.remote}", str(run["work"])], check=True,
                       capture_output=True, text=True)
        sha = self.github.get("sha") if not args.get("ref") else None
        git = ["git", "-C", str(run["work"])]
        subprocess.run([*git, "checkout", "-q", "-B", ref, sha or f"origin/{ref}"], check=True,
                       capture_output=True, text=True)
        return f"checked out {ref}\n"

    def upload(self, args: dict, run: dict) -> str:
        target = self.artifacts / args["name"]
        if target.exists():
            raise StepFailed(f"an artifact named {args['name']} exists already")
        patterns = [p.strip() for p in str(args["path"]).splitlines() if p.strip()]
        found = [Path(f) for p in patterns for f in sorted(glob.glob(p, recursive=True))]
        if not found:
            if args.get("if-no-files-found", "warn") == "error":
                raise StepFailed(f"no files found at {args['path']}")
            return "no files found; nothing uploaded\n"
        root = Path(os.path.commonpath([f.parent if f.is_file() else f for f in found]))
        for f in found:
            dest = target / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, dest)
        return f"uploaded {len(found)} path(s) as {args['name']}\n"

    def download(self, args: dict, run: dict) -> str:
        dest = Path(args.get("path") or run["work"])
        if "name" in args:
            source = self.artifacts / args["name"]
            if not source.is_dir():
                raise StepFailed(f"artifact {args['name']} not found")
            shutil.copytree(source, dest, dirs_exist_ok=True)
            return f"downloaded {args['name']}\n"
        names = sorted(p.name for p in self.artifacts.iterdir()
                       if fnmatch.fnmatchcase(p.name, args.get("pattern", "*")))
        merge = args.get("merge-multiple") in (True, "true")
        for n in names:
            shutil.copytree(self.artifacts / n, dest if merge else dest / n, dirs_exist_ok=True)
        return f"downloaded {names}\n"


class StepFailed(Exception):
    """An emulated action's failure: the step fails, as the action would."""


def expand_matrix(runner: Runner, workflow: dict, job_id: str,
                  needs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries of a job's `strategy.matrix` (evaluated with `needs`): the product of
    its lists, plus `include`; each entry is one job run."""
    strategy = workflow["jobs"][job_id].get("strategy") or {}
    ctx = {"needs": {k: {"result": v.get("result", "success"),
                         "outputs": Nullable(v.get("outputs", {}))} for k, v in needs.items()},
           "vars": runner.vars, "inputs": input_defaults(workflow)}
    matrix = runner.render(strategy.get("matrix") or {}, ctx, {"fromJSON": json.loads})
    if "exclude" in matrix:
        raise ExpressionError("matrix exclude is not emulated")
    entries: list[dict[str, Any]] = [{}]
    for key, values in matrix.items():
        if key != "include":
            entries = [{**e, key: v} for e in entries for v in values]
    include = matrix.get("include") or []
    if entries == [{}]:
        return [dict(i) for i in include]
    return entries + [dict(i) for i in include]  # (GitHub merges includes; ours only add)
