"""Claims of docs/github-actions.md and docs/gitlab-ci.md that no other test proved.

The workflows' jobs run on tests/support/ghrunner.py with stand-ins for `mlops`
and `docker` (as in tests/test_workflow_runs.py); what mlops itself reports in CI
(job summary, annotations, GitLab reports) and what the pull request's build does
are checked with the real mlops, git, Docker Engine and registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, mlops_yaml, tiny_component
from tests.support.ghrunner import load_workflow
from tests.support.promotion import kustomization
from tests.support.workflowcheck import zizmor
from tests.test_workflow_runs import (  # noqa: F401 - scaffold_remote: a fixture
    REGISTRY,
    SECRETS,
    VARS,
    argvs,
    calls,
    make_runner,
    scaffold_remote,
)

REPO = Path(__file__).resolve().parents[1]
CI_DIR = REPO / ".github" / "workflows"
SCAFFOLD_DIR = REPO / "mlops" / "scaffold" / "github" / "workflows"
STATUS = ["status", "--env", "prod", "--wait", "--timeout", "600"]


@pytest.fixture(scope="module")
def remote(scaffold_remote) -> tuple[Path, str]:  # noqa: F811
    """A bare remote holding what `mlops init` commits; (remote, head)."""
    return scaffold_remote


def workflow(name: str) -> dict:
    return load_workflow(SCAFFOLD_DIR / name)


# -- the workflows, run -------------------------------------------------------------------

PLAN = {"matrix": '{"include":[{"shard":0,"components":"model"}]}', "shards": "1"}
# Every scaffold job with steps, and what it needs to start.
JOBS = [("main.yml", "plan", {}), ("main.yml", "build", {"needs": {"plan": {"outputs": PLAN}},
                                                       "matrix": {"shard": 0}}),
        ("main.yml", "merge", {"needs": {"plan": {"outputs": PLAN}, "build": {}}}),
        ("main.yml", "promote-dev", {"needs": {"merge": {}}}),
        ("staging.yml", "promote-staging", {}), ("prod.yml", "canary", {}), ("pr.yml", "check", {})]


@pytest.mark.parametrize("name, job_id, start", JOBS, ids=[f"{w}-{j}" for w, j, _ in JOBS])
def test_every_job_stops_with_an_error_until_mlops_pip_spec_is_set(remote, tmp_path, name,
                                                                    job_id, start):
    job = make_runner(tmp_path, *remote, secrets=SECRETS).run_job(workflow(name), job_id, **start)
    assert job.result == "failure"
    install = next(s for s in job.steps if s.name == "Install mlops")
    assert install.outcome == "failure" and "::error::set the repository variable " \
        "MLOPS_PIP_SPEC" in install.stdout
    assert argvs(tmp_path, "mlops") == []


@pytest.mark.parametrize("vars, base, pipeline", [
    ({}, "busybox:1.37", "training"),
    ({"MLOPS_MODELCAR_BASE": "alpine:3.20", "MLOPS_PIPELINE": "nightly"}, "alpine:3.20", "nightly"),
])
def test_staging_publishes_the_model_as_an_image_from_the_modelcar_base(remote, tmp_path, vars,
                                                                        base, pipeline):
    runner = make_runner(tmp_path, *remote, vars={**VARS, **vars}, secrets=SECRETS)
    job = runner.run_job(workflow("staging.yml"), "promote-staging")
    assert job.result == "success", job.log()
    image = f"{REGISTRY}/models/{pipeline}:run-42-1"
    build = next(c for c in calls(tmp_path, "docker") if c["argv"][0] == "build")
    assert build["argv"][:4] == ["build", "--quiet", "--tag", image]
    assert build["stdin"].split() == ["FROM", base, "COPY", "model/", "/models/"]
    run, promote = argvs(tmp_path, "mlops")[1:]
    assert run[:2] == ["run", pipeline]
    assert promote[promote.index("--model-uri") + 1] == \
        f"oci://{REGISTRY}/models/{pipeline}@sha256:{'ab' * 32}"


def test_without_mlops_git_token_promotions_push_with_the_runs_token(remote, tmp_path):
    runner = make_runner(tmp_path, *remote, vars=VARS,
                         secrets={k: v for k, v in SECRETS.items() if k != "MLOPS_GIT_TOKEN"})
    runner.artifacts.joinpath("build-record").mkdir()
    (runner.artifacts / "build-record" / "build.json").write_text("{}")
    job = runner.run_job(workflow("main.yml"), "promote-dev", needs={"merge": {}})
    assert job.result == "success", job.log()
    credentials = job.temp.parent / "home" / ".git-credentials"
    assert credentials.read_text().strip() == "https://x-access-token:ghs_runtoken@github.com"


def test_the_kubeconfig_secret_is_a_file_of_mode_600(remote, tmp_path):
    runner = make_runner(tmp_path, *remote, vars=VARS, secrets=SECRETS)
    job = runner.run_job(workflow("prod.yml"), "canary", inputs={"action": "abort"})
    assert job.result == "success", job.log()
    used = {c["env"]["KUBECONFIG"] for c in calls(tmp_path, "mlops") if c["argv"] != ["--version"]}
    (path,) = used
    assert Path(path).stat().st_mode & 0o777 == 0o600
    assert Path(path).read_text() == SECRETS["KUBECONFIG"] + "\n"


@pytest.mark.parametrize("code, next_line", [
    (3, "**Next:** The analysis failed: mlops aborted the canary"),
    (4, "**Next:** No signed approval in time."),
    (5, "**Next:** The analysis was inconclusive: the canary holds its step."),
    (1, None),
])
def test_a_canary_that_does_not_reach_100_fails_the_job_and_still_waits(remote, tmp_path, code,
                                                                        next_line):
    runner = make_runner(tmp_path, *remote, vars=VARS, secrets=SECRETS,
                         exits={"rollout run": code})
    job = runner.run_job(workflow("prod.yml"), "canary", inputs={"action": "resume"})
    assert job.result == "failure"
    assert [s.name for s in job.failed()] == ["Analyze and promote, step by step, to 100%"]
    assert job.steps[-1].name == "Wait for the cluster to converge"
    assert job.steps[-1].outcome == "success" and argvs(tmp_path, "mlops")[-1] == STATUS
    if next_line is None:
        assert "**Next:**" not in job.summary
    else:
        assert job.summary.count("**Next:**") == 1 and next_line in job.summary


def test_the_triggers_and_groups_the_table_and_concurrency_section_name():
    main = workflow("main.yml")["on"]
    assert main == {"push": {"branches": ["main"], "paths-ignore": ["environments/**"]},
                    "workflow_dispatch": None}
    assert set(workflow("staging.yml")["on"]) == {"workflow_call", "workflow_dispatch"}
    assert set(workflow("prod.yml")["on"]) == {"workflow_dispatch"}
    pr = workflow("pr.yml")
    assert pr["on"] == {"pull_request": None}
    assert pr["concurrency"] == {"group": "mlops-pr-${{ github.event.pull_request.number }}",
                                 "cancel-in-progress": True}


# -- zizmor: what remains, as the docs list it ------------------------------------------

WORKFLOW_FILES = [*sorted(CI_DIR.glob("*.yml")), *sorted(SCAFFOLD_DIR.glob("*.yml"))]


def findings(persona: str) -> set[tuple[str, str, str]]:
    """(file name, audit, severity) of every finding."""
    _, found = zizmor(*WORKFLOW_FILES, persona=persona)
    return {(Path(loc["symbolic"]["key"]["Local"]["verbatim_path"]).name, f["ident"],
             f["determinations"]["severity"]) for f in found for loc in f["locations"]
            if loc["symbolic"]["kind"] == "Primary"}


def test_zizmor_reports_only_what_the_docs_say_remains():
    auditor = findings("auditor")
    assert {(a, s) for _, a, s in auditor if s in ("Medium", "High")} == \
        {("secrets-outside-env", "Medium")}
    assert "prod.yml" not in {f for f, a, _ in auditor if a == "secrets-outside-env"}
    pedantic = findings("pedantic")
    assert {a for _, a, _ in pedantic} == {"self-repository", "concurrency-limits",
                                            "anonymous-definition"}
    assert {s for _, a, s in pedantic if a != "anonymous-definition"} == {"Low"}
    assert {f for f, a, _ in pedantic if a == "concurrency-limits"} == {"main.yml"}
    # In the default persona only the calls of staging.yml (`uses: ./.github/...`) remain.
    assert {(f, a, s) for f, a, s in findings("regular")} == {
        ("main.yml", "self-repository", "Low"), ("retrain.yml", "self-repository", "Low")}


# -- mlops itself in CI --------------------------------------------------------------------


def gated_project(project, ns: str, **components: str):
    """A committed repository: staging's gate wants accuracy >= 0.9; `components` maps a
    name to its `test:` command."""
    files = {"mlops.yaml": mlops_yaml(ns).replace(
        "  - name: staging\n", "  - name: staging\n    gates:\n      - metric: accuracy\n"
        "        threshold: 0.9\n")}
    for name, test in components.items():
        files.update(tiny_component(name, test=test))
    for env in ("dev", "staging", "prod"):
        files[f"environments/{env}/kustomization.yaml"] = kustomization(env)
    for path in (REPO / "environments" / "base").iterdir():
        files[f"environments/base/{path.name}"] = path.read_bytes()
    proj = project(files)
    remote = proj.path.parent / "remote.git"
    git(proj.path.parent, "init", "-q", "--bare", "-b", "main", str(remote))
    proj.git("remote", "add", "origin", str(remote))
    proj.git("push", "-q", "-u", "origin", "main")
    return proj


@pytest.mark.usefixtures("docker_engine")
def test_in_github_actions_a_failed_gate_is_a_gate_table_an_annotation_and_an_error(
        project, registry, tmp_path):
    _, ns = registry
    proj = gated_project(project, ns, model='["python3", "-c", "print(1)"]')
    build = tmp_path / "build.json"
    assert proj.run("build", "--output", str(build)).code == 0
    assert proj.run("promote", "--to", "dev", "--build", str(build)).code == 0
    (tmp_path / "m.json").write_text(json.dumps({"accuracy": 0.5}))
    summary = tmp_path / "summary.md"
    gha = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = proj.run("promote", "--to", "staging", "--from", "dev", "--metrics",
                      str(tmp_path / "m.json"), env=gha)
    assert result.code == 3
    message = "1 gate(s) failed; accuracy-threshold: accuracy 0.5 >= 0.9 is false"
    assert result.err == f"mlops: error: {message}\n::error::{message}\n"
    # The result section first (every gate's verdict: what "Kept the champion" points
    # to as "the table above"), then the error's.
    table, error = summary.read_text().split("### ❌ `mlops promote` failed (exit 3)")
    assert table.startswith("### ❌ `mlops promote`\n") and "**status:** `refused`" in table
    assert "| accuracy-threshold | fail | accuracy 0.5 >= 0.9 is false |" in table
    assert error == f"\n\n{message}\n\n"


@pytest.mark.usefixtures("docker_engine")
def test_the_pull_request_build_tests_only_what_changed_and_pushes_nothing(project, registry):
    server, ns = registry
    failing = '["python3", "-c", "raise SystemExit(3)"]'
    proj = gated_project(project, ns, changed=failing, same=failing)
    proj.git("checkout", "-q", "-b", "feature")
    proj.write({"components/changed/src/main.py": "print('changed again')\n"})
    proj.commit("change one component")
    result = proj.run("build", "--changed-since", "origin/main", "--no-push", "--json")
    assert result.code == 1
    assert "1 of 1 components failed; changed: test command exited 3" in result.err
    assert [b["component"] for b in result.json["builds"]] == ["changed"]
    assert [server.tags(f"{ns.split('/', 1)[1]}/{n}") for n in ("changed", "same")] == [[], []]


def test_in_gitlab_ci_an_unwritable_report_changes_neither_output_nor_exit_code(project,
                                                                               tmp_path):
    repo = project({"mlops.yaml": "registry: 127.0.0.1:5000/x\nenvironments:\n  - name: dev\n",
                    **tiny_component("train", version="one"),
                    "environments/dev/kustomization.yaml": "resources: []\n"})
    outside = repo.run("validate")
    (tmp_path / "file").write_text("")
    inside = repo.run("validate", env={"GITLAB_CI": "true", "CI_PROJECT_DIR": str(tmp_path),
                                       "MLOPS_REPORTS_DIR": "file/reports"})
    assert inside.code == outside.code == 1 and inside.out == outside.out
    lines = inside.err.split("\n")  # a section marker holds a \r
    warnings = [line for line in lines if line.startswith("mlops: warning: ")]
    where = f"in {tmp_path / 'file' / 'reports'}: Not a directory"
    assert warnings == [f"mlops: warning: cannot write the GitLab JUnit report {where}",
                        f"mlops: warning: cannot write the GitLab dotenv report {where}"]
    start = next(i for i, line in enumerate(lines) if "section_start:" in line)
    end = next(i for i, line in enumerate(lines) if "section_end:" in line)
    rest = [line for line in lines[:start] + lines[end + 1:] if line not in warnings]
    assert rest == outside.err.split("\n")
