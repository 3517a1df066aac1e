"""GitHub Actions workflows: the linters and schema accept them, and every
`mlops ...` they run exists in the real CLI parser.

Both this repository's CI (.github/workflows/) and the templates `mlops init`
copies into new repositories (mlops/scaffold/github/workflows/) are checked.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from tests.support.workflowcheck import (
    actionlint,
    check_invocation,
    mlops_invocations,
    workflow_schema,
)

REPO = Path(__file__).resolve().parents[1]
CI_DIR = REPO / ".github" / "workflows"
SCAFFOLD_DIR = REPO / "mlops" / "scaffold" / "github" / "workflows"
WORKFLOWS = sorted(p for d in (CI_DIR, SCAFFOLD_DIR) for p in d.glob("*.y*ml"))
DOCS = REPO / "docs" / "github-actions.md"


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
