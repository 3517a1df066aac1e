"""GitHub Actions workflows: the linters and schema accept them, and every
`mlops ...` they run exists in the real CLI parser.

Both this repository's CI (.github/workflows/) and the templates `mlops init`
copies into new repositories (mlops/scaffold/github/workflows/) are checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from tests.support.workflowcheck import (
    actionlint,
    check_invocation,
    finding_lines,
    mlops_invocations,
    workflow_schema,
    zizmor,
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
        "ci.yml", "main.yml", "prod.yml", "retrain.yml", "staging.yml"]
    assert sorted(p.name for p in SCAFFOLD_DIR.glob("*.yml")) == [
        "main.yml", "pr.yml", "prod.yml", "retrain.yml", "staging.yml"]


@pytest.mark.parametrize("name", ["main.yml", "staging.yml", "prod.yml", "retrain.yml"])
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
    calls_only = all("uses" in job for job in load(path)["jobs"].values())
    assert invocations or calls_only, f"{path.name}: no mlops invocation found"
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
    ["build", "--plan", "--shards", "4", "--output", "plan.json"],
    ["build", "--shard", "0", "--plan", "plan.json", "--push", "--output", "part-0.json"],
    ["build", "--merge", "a.json", "b.json", "--plan", "plan.json", "--output", "b.json"],
    ["build", "--merge", "--plan", "plan.json", "--output", "build.json"],
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
    # An optional value or a list stops at the next option, as in argparse.
    (["build", "--plan", "--shardz", "4"], "no option --shardz"),
    (["build", "--merge", "a.json", "--outptu", "b.json"], "no option --outptu"),
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
            if isinstance(trigger, dict):  # `schedule:` is a list of crons
                names |= set(trigger.get("inputs") or {}) | set(trigger.get("secrets") or {})
    undocumented = sorted(n for n in names if f"`{n}`" not in text)
    assert undocumented == []


# -- supply chain: pinned actions, zizmor ---------------------------------------

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})$")
TAG_COMMENT = re.compile(r"^\s+# (?P<tag>v\d+(?:\.\d+){0,2})$")


def pinned_uses() -> Iterator[tuple[str, int, str, str, str]]:
    """(file, line number, action, sha, tag) for every `uses:` of another repository,
    read from the raw text: the tag is only in a comment, which YAML drops."""
    for path in WORKFLOWS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = USES_LINE.match(line)
            if not m or m["ref"].startswith("./"):
                continue
            pin, comment = PINNED.match(m["ref"]), TAG_COMMENT.match(m["rest"])
            where = f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            assert pin and comment, f"{where}: not `owner/repo@<40 hex> # vX.Y.Z`"
            yield where, number, pin["action"], pin["sha"], comment["tag"]


def test_every_action_is_pinned_by_commit_with_its_tag_as_a_comment():
    pins = list(pinned_uses())
    # Every `uses:` line was seen (none slipped past the regular expression).
    steps = [s["uses"] for p in WORKFLOWS for job in load(p)["jobs"].values()
             for s in job.get("steps", []) if "uses" in s]
    assert len(pins) == len(steps) > 0


def test_one_action_is_pinned_to_one_commit_and_tag_everywhere():
    seen: dict[str, set[tuple[str, str]]] = {}
    for _, _, action, sha, tag in pinned_uses():
        seen.setdefault(action, set()).add((sha, tag))
    assert {a: pins for a, pins in seen.items() if len(pins) > 1} == {}


def test_the_docs_list_every_pinned_action_with_its_commit_and_tag():
    text = DOCS.read_text()
    missing = sorted({f"{action}@{sha} # {tag}" for _, _, action, sha, tag in pinned_uses()
                      if not (f"`{action}`" in text and f"`{sha}`" in text
                              and f"`{tag}`" in text)})
    assert missing == [], "docs/github-actions.md, table of pinned actions"


@pytest.mark.parametrize("pin_line, ok", [
    ("      - uses: actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af803 # v6.1.0", True),
    ("      - uses: actions/checkout@v6", False),
    ("      - uses: actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af803", False),
    ("        uses: actions/checkout@d23441a # v6.1.0", False),
    ("    uses: ./.github/workflows/staging.yml", True),
])
def test_the_pin_check_rejects_a_tag_a_short_sha_or_no_comment(tmp_path, monkeypatch, pin_line, ok):
    bad = tmp_path / "w.yml"
    bad.write_text(f"jobs:\n  x:\n    steps:\n{pin_line}\n")
    monkeypatch.setattr(sys.modules[__name__], "WORKFLOWS", [bad])
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    if ok:
        list(pinned_uses())
    else:
        with pytest.raises(AssertionError, match="not `owner/repo@<40 hex>"):
            list(pinned_uses())


def test_checkouts_keep_no_credentials():
    for path in WORKFLOWS:
        for job_id, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, \
                        f"{path.name}: job {job_id}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_ids())
def test_workflows_grant_only_read_at_the_top_and_inherit_no_secrets(path):
    workflow = load(path)
    assert set(workflow["permissions"].values()) <= {"read", "none"}, \
        "write permissions go on the job that needs them"
    for job_id, job in workflow["jobs"].items():
        assert job.get("secrets") != "inherit", f"job {job_id}: pass secrets by name"


def test_staging_declares_the_secrets_main_passes_it_and_all_it_uses():
    staging = load(SCAFFOLD_DIR / "staging.yml")
    declared = set(staging[True]["workflow_call"]["secrets"])
    used = set(re.findall(r"\bsecrets\.([A-Z0-9_]+)", (SCAFFOLD_DIR / "staging.yml").read_text()))
    assert used <= declared, "a secret staging.yml uses would be empty when main.yml calls it"
    call = load(SCAFFOLD_DIR / "main.yml")["jobs"]["staging"]
    assert call["secrets"] == {name: f"${{{{ secrets.{name} }}}}" for name in declared}
    assert all(not s["required"] for s in staging[True]["workflow_call"]["secrets"].values()), \
        "required secrets would break repositories that use the defaults"


ALL_WORKFLOW_FILES = [*sorted(CI_DIR.glob("*.yml")), *sorted(SCAFFOLD_DIR.glob("*.yml"))]


def test_zizmor_finds_nothing_high_in_the_workflows():
    _, findings = zizmor(*ALL_WORKFLOW_FILES)
    assert finding_lines(findings, "High") == []


def test_zizmor_finds_nothing_medium_in_the_workflows():
    # The regular persona; `--persona auditor` adds `secrets-outside-env` (docs/github-actions.md).
    _, findings = zizmor(*ALL_WORKFLOW_FILES)
    assert finding_lines(findings, "Medium") == []


def test_zizmor_audits_the_scaffold_files_themselves():
    # Given a directory, zizmor only collects its .github/workflows/: the scaffold's
    # files are named one by one, and each is audited.
    _, findings = zizmor(*ALL_WORKFLOW_FILES, persona="pedantic")
    audited = {loc["symbolic"]["key"]["Local"]["verbatim_path"]
               for f in findings for loc in f["locations"]}
    assert {str(p) for p in SCAFFOLD_DIR.glob("*.yml")} <= audited


@pytest.mark.parametrize("step, audit", [
    ("      - uses: some-org/some-action@v1\n", "unpinned-uses"),
    ('      - run: echo "${{ github.event.issue.title }}"\n', "template-injection"),
])
def test_the_zizmor_check_fails_on_a_bad_workflow(tmp_path, step, audit):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: issues\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
                   "    steps:\n" + step)
    proc, findings = zizmor(bad, cwd=tmp_path)
    high = finding_lines(findings, "High")
    assert proc.returncode == 14 and any(f": {audit}:" in line for line in high), high


# -- main.yml: plan, build in shards, merge -------------------------------------

MAIN = SCAFFOLD_DIR / "main.yml"


def main_jobs() -> dict:
    return load(MAIN)["jobs"]


def step_using(job: dict, action: str, **with_: object) -> dict:
    steps = [s for s in job["steps"] if s.get("uses", "").startswith(f"{action}@")
             and all(s.get("with", {}).get(k) == v for k, v in with_.items())]
    assert len(steps) == 1, (action, with_)
    return steps[0]


def mlops_commands(job: dict) -> list[list[str]]:
    return [argv for argv in job_invocations(job) if argv[:1] != ["--version"]]


def test_main_fans_out_plan_build_merge_then_promotes():
    jobs = main_jobs()
    assert list(jobs) == ["plan", "build", "merge", "promote-dev", "staging"]
    assert jobs["build"]["needs"] == "plan"
    assert jobs["merge"]["needs"] == ["plan", "build"]
    assert jobs["promote-dev"]["needs"] == "merge"
    assert jobs["staging"]["needs"] == "promote-dev"
    assert mlops_commands(jobs["plan"]) == [[
        "build", "--plan", "--shards", "${MLOPS_BUILD_SHARDS:-4}",
        "--output", "$RUNNER_TEMP/plan.json"]]
    assert mlops_commands(jobs["build"]) == [[
        "build", "--shard", "$SHARD", "--plan", "$RUNNER_TEMP/plan.json", "--push",
        "--output", "$RUNNER_TEMP/part-$SHARD.json"]]
    assert mlops_commands(jobs["merge"]) == [[
        "build", "--merge", "${parts[@]}", "--plan", "$RUNNER_TEMP/plan.json",
        "--output", "$RUNNER_TEMP/build.json"]]
    assert mlops_commands(jobs["promote-dev"]) == [[
        "promote", "--to", "dev", "--build", "$RUNNER_TEMP/build.json"]]


def test_the_build_matrix_is_the_plans_and_every_shard_finishes():
    jobs = main_jobs()
    plan_step = next(s for s in jobs["plan"]["steps"] if s.get("id") == "plan")
    assert plan_step["env"]["MLOPS_BUILD_SHARDS"] == "${{ vars.MLOPS_BUILD_SHARDS }}"
    assert jobs["plan"]["outputs"] == {"matrix": "${{ steps.plan.outputs.matrix }}",
                                       "shards": "${{ steps.plan.outputs.shards }}"}
    build = jobs["build"]
    assert build["if"] == "needs.plan.outputs.shards != '0'"
    assert build["strategy"] == {"fail-fast": False,
                                 "matrix": "${{ fromJSON(needs.plan.outputs.matrix) }}"}
    shard_step = next(s for s in build["steps"] if "mlops build --shard" in s.get("run", ""))
    assert shard_step["env"] == {"SHARD": "${{ matrix.shard }}"}
    upload = step_using(build, "actions/upload-artifact", name="build-part-${{ matrix.shard }}")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "${{ runner.temp }}/part-${{ matrix.shard }}.json"


def test_merge_runs_when_build_is_skipped_or_a_shard_failed():
    merge = main_jobs()["merge"]
    # Not success(): that is false when build was skipped or failed.
    assert merge["if"] == "${{ !cancelled() && needs.plan.result == 'success' }}"
    parts = step_using(merge, "actions/download-artifact", pattern="build-part-*")
    assert parts["with"] == {"pattern": "build-part-*", "merge-multiple": True,
                             "path": "${{ runner.temp }}/parts"}
    record = step_using(merge, "actions/upload-artifact", name="build-record")
    assert record["if"] == "always()"
    promote = main_jobs()["promote-dev"]
    assert "if" not in promote, "promote-dev runs only after a successful merge"
    step_using(promote, "actions/download-artifact", name="build-record")


def test_the_jobs_that_need_the_plan_download_it():
    jobs = main_jobs()
    upload = step_using(jobs["plan"], "actions/upload-artifact", name="build-plan")
    assert upload["with"]["path"] == "${{ runner.temp }}/plan.json"
    for job_id in ("build", "merge"):
        download = step_using(jobs[job_id], "actions/download-artifact", name="build-plan")
        assert download["with"]["path"] == "${{ runner.temp }}", job_id


def test_each_main_job_has_least_privilege_permissions():
    jobs = main_jobs()
    assert load(MAIN)["permissions"] == {"contents": "read"}
    assert jobs["plan"]["permissions"] == {"contents": "read", "packages": "read"}
    assert jobs["build"]["permissions"] == {"contents": "read", "packages": "write"}
    assert jobs["merge"]["permissions"] == {"contents": "read", "packages": "write"}
    assert jobs["promote-dev"]["permissions"] == {"contents": "write", "packages": "read"}
    staging_job = load(SCAFFOLD_DIR / "staging.yml")["jobs"]["promote-staging"]
    assert jobs["staging"]["permissions"] == staging_job["permissions"]


def test_every_main_job_that_runs_mlops_installs_it_and_logs_in_first():
    for job_id, job in main_jobs().items():
        if "steps" not in job:
            continue
        names = [s.get("name", "") for s in job["steps"]]
        first_mlops = next(i for i, s in enumerate(job["steps"])
                           if mlops_commands({"steps": [s]}))
        assert names.index("Install mlops") < names.index("Log in to the registry") < first_mlops, \
            job_id


# Running the scripts of plan and merge as GitHub does (bash -e -o pipefail), with a
# stand-in `mlops` that logs its arguments and writes what the real one would.

FAKE_MLOPS = """\
import json, sys
argv = sys.argv[1:]
with open(sys.argv[0] + ".log", "a") as log:
    log.write(json.dumps(argv) + "\\n")
if argv[:2] == ["build", "--plan"]:
    out = argv[argv.index("--output") + 1]
    n = int(argv[argv.index("--shards") + 1])
    include = [{"shard": k, "components": f"c{k} d{k}", "size": 1.5} for k in range(min(n, 2))]
    with open(out, "w") as f:
        json.dump({"kind": "mlops-build-plan", "version": 1, "source_commit": "abc",
                   "registry": "r", "shards": len(include), "matrix": {"include": include},
                   "components": []}, f, indent=2)
"""


def run_step(tmp_path: Path, script: str, env: dict[str, str]) -> tuple[list[list[str]], Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "mlops"
    fake.write_text(f"#!{sys.executable}\n{FAKE_MLOPS}")
    fake.chmod(0o755)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    output = tmp_path / "github-output"
    output.touch()
    script_file = tmp_path / "step.sh"
    script_file.write_text(script)
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "RUNNER_TEMP": str(runner_temp),
             "GITHUB_OUTPUT": str(output), **env},
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    log = bindir / "mlops.log"
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return calls, output


def step_script(job_id: str, needle: str) -> str:
    return next(s["run"] for s in main_jobs()[job_id]["steps"] if needle in s.get("run", ""))


@pytest.mark.parametrize("shards, expected_flag", [("", "4"), ("1", "1"), ("7", "7")])
def test_the_plan_step_writes_the_matrix_and_shard_count_as_outputs(tmp_path, shards, expected_flag):
    calls, output = run_step(tmp_path, step_script("plan", "mlops build --plan"),
                             {"MLOPS_BUILD_SHARDS": shards})
    assert calls[0][:4] == ["build", "--plan", "--shards", expected_flag]
    lines = output.read_text().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["matrix", "shards"]
    matrix = lines[0].split("=", 1)[1]
    assert " " not in matrix.replace("c0 d0", "").replace("c1 d1", ""), "compact JSON, one line"
    n = min(int(expected_flag), 2)
    assert json.loads(matrix) == {"include": [
        {"shard": k, "components": f"c{k} d{k}", "size": 1.5} for k in range(n)]}
    assert lines[1] == f"shards={n}"


@pytest.mark.parametrize("parts", [[], ["part-0.json"], ["part-0.json", "part-1.json"]])
def test_the_merge_step_passes_every_downloaded_part_even_none(tmp_path, parts):
    parts_dir = tmp_path / "runner-temp" / "parts"
    if parts:
        parts_dir.mkdir(parents=True)
        for name in parts:
            (parts_dir / name).write_text("{}")
    calls, _ = run_step(tmp_path, step_script("merge", "mlops build --merge"), {})
    temp = tmp_path / "runner-temp"
    assert calls == [["build", "--merge", *(str(parts_dir / p) for p in parts),
                      "--plan", f"{temp}/plan.json", "--output", f"{temp}/build.json"]]


def test_retraining_runs_on_a_schedule_through_staging_keeping_the_champion():
    workflow = load(SCAFFOLD_DIR / "retrain.yml")
    triggers = workflow[True]  # yaml reads `on:` as True
    assert [c["cron"] for c in triggers["schedule"]] == ["17 3 * * 1-5"]
    assert "workflow_dispatch" in triggers
    [job] = workflow["jobs"].values()
    assert job["uses"] == "./.github/workflows/staging.yml"
    assert job["with"] == {"keep-champion": True}
    staging = load(SCAFFOLD_DIR / "staging.yml")[True]["workflow_call"]
    assert staging["inputs"]["keep-champion"] == {
        "description": staging["inputs"]["keep-champion"]["description"],
        "type": "boolean", "default": False}
    assert set(job["secrets"]) == set(staging["secrets"])
