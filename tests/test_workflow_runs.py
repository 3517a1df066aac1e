"""Every job of every workflow, run: the GitHub Actions workflows in .github/workflows/
and in the `mlops init` scaffold, each job's steps run by tests/support/ghrunner.py
as an ubuntu runner would, on a PATH of the runner's own tools plus stand-ins for
`mlops`, `docker` and the few tools a job cannot really run here (each says why).

Each job lists the commands it must run, in order: a changed workflow changes
this file. The end-to-end test at the bottom runs main.yml's plan, build
(one job per shard of the real plan), merge and promote-dev with the real mlops
against a real registry and git remote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mlops.errors import ApprovalError
from mlops.services.approvals import Approvals
from tests.conftest import git
from tests.support.ghrunner import ExpressionError, Runner, expand_matrix, load_workflow
from tests.support.workflowcheck import tool

REPO = Path(__file__).resolve().parents[1]
CI_DIR = REPO / ".github" / "workflows"
SCAFFOLD_DIR = REPO / "mlops" / "scaffold" / "github" / "workflows"
REGISTRY = "registry.example.test/team/ml"  # what `mlops init --registry` writes
DIGEST = "sha256:" + "ab" * 32
IDENTITY = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
            "GIT_COMMITTER_EMAIL": "t@x"}
# Tools of the ubuntu-latest image the scripts (and git, pip, mlops) may run; nothing else.
# kubectl is preinstalled there: `mlops promote` renders an environment with kustomize.
UBUNTU = ["bash", "sh", "env", "install", "cat", "mkdir", "rm", "cp", "mv", "ls", "grep",
          "sed", "tr", "head", "tail", "uname", "dirname", "basename", "id", "date", "kubectl"]

# A stand-in that records its argv (and its stdin when the call reads it) as JSON lines,
# plus the environment mlops reads; `behave` does what the real tool would leave behind.
STANDIN = """#!{python}
import json, os, sys
name, argv = {name!r}, sys.argv[1:]
entry = {{"argv": argv}}
if "--password-stdin" in argv or "-" in argv:  # docker login, docker build --file -
    entry["stdin"] = sys.stdin.read()
entry["env"] = {{k: os.environ.get(k) for k in ("KUBECONFIG", "MLOPS_REGISTRY",
                 "MLOPS_PROMETHEUS_URL", "MLOPS_REGISTRY_RETRIES", "PIPELINE")}}
with open({log!r}, "a") as fh:
    fh.write(json.dumps(entry) + "\\n")
{behave}
exits = json.load(open({exits!r})) if os.path.exists({exits!r}) else {{}}
code = exits.get(" ".join(argv[:2]), 0)
if isinstance(code, list):  # [exit code, what the real tool prints on stderr]
    code, err = code
    sys.stderr.write(err)
sys.exit(code)
"""

MLOPS_BEHAVIOUR = """
def opt(flag):
    return argv[argv.index(flag) + 1]
def dump(path, data):
    with open(path, "w") as fh:
        json.dump(data, fh)
if argv == ["--version"]:
    print("mlops 0.1.0")
elif argv[:2] == ["build", "--plan"]:
    include = [{"shard": 0, "components": "model", "size": 1.0},
               {"shard": 1, "components": "other", "size": 1.0}]
    dump(opt("--output"), {"kind": "mlops-build-plan", "shards": 2,
                           "matrix": {"include": include}, "components": []})
elif argv[:1] == ["build"] and "--output" in argv:
    dump(opt("--output"), {"kind": "part" if "--shard" in argv else "record", "builds": []})
elif argv[:1] == ["run"]:
    out = opt("--output-dir")
    os.makedirs(os.path.join(out, "model"), exist_ok=True)
    dump(os.path.join(out, "metrics.json"), {"accuracy": 0.95})
    dump(os.path.join(out, "run.json"), {"status": "succeeded"})
    open(os.path.join(out, "model", "model.joblib"), "w").write("weights")
"""
DOCKER_BEHAVIOUR = f"""
if argv[:2] == ["image", "inspect"]:
    print(argv[-1].rsplit(":", 1)[0] + "@{DIGEST}")
"""
# sudo: the runner's user has passwordless sudo; here the command runs as the test's user.
SUDO_BEHAVIOUR = """
rest = argv[:]
while rest and rest[0].startswith("-"):
    rest.pop(0)
os.execvp(rest[0], rest)
"""
# python: ci.yml's `pip install -e '.[test]'` needs the index (its build backend needs
# `wheel`) and would reinstall this machine's mlops; every other python call is real.
PYTHON_BEHAVIOUR = f"""
if argv[:2] != ["-m", "pip"]:
    os.execv({sys.executable!r}, [{sys.executable!r}, *argv])
"""


@pytest.fixture(scope="module")
def scaffold_remote(tmp_path_factory) -> tuple[Path, str]:
    """A bare remote holding what `mlops init` commits, and a pull request's branch."""
    base = tmp_path_factory.mktemp("scaffold")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(base), **IDENTITY}
    subprocess.run([sys.executable, "-m", "mlops", "init", "ml", "--registry", REGISTRY],
                   cwd=base, env=env, check=True, capture_output=True)
    git(base, "clone", "-q", "--bare", str(base / "ml"), str(base / "remote.git"))
    git(base / "remote.git", "branch", "feature", "main")
    return base / "remote.git", git(base / "remote.git", "rev-parse", "main")


@pytest.fixture(scope="module")
def this_remote(tmp_path_factory) -> tuple[Path, str]:
    """This repository's committed HEAD, for its own ci.yml."""
    base = tmp_path_factory.mktemp("self")
    git(base, "clone", "-q", "--bare", str(REPO), str(base / "remote.git"))
    head = git(REPO, "rev-parse", "HEAD")
    git(base / "remote.git", "update-ref", "refs/heads/main", head)
    return base / "remote.git", head


def github(sha: str, event: str = "push", ref: str = "main", **more: str) -> dict[str, str]:
    return {"event_name": event, "ref_name": ref, "ref": f"refs/heads/{ref}", "sha": sha,
            "actor": "octocat", "token": "ghs_runtoken", "server_url": "https://github.com",
            "repository": "org/ml", "run_id": "42", "run_attempt": "1", "base_ref": "",
            **more}


def make_runner(tmp_path: Path, remote: Path, sha: str, *, vars=None, secrets=None,
                standins=("mlops", "docker"), exits=None, **gh: str) -> Runner:
    calls = tmp_path / "calls"
    calls.mkdir(exist_ok=True)
    if exits:
        (calls / "exits.json").write_text(json.dumps(exits))
    tools: dict[str, str | Path] = {n: p for n in UBUNTU if (p := shutil.which(n))}
    tools.update(python=sys.executable, python3=sys.executable, git=shutil.which("git") or "git")
    behaviour = {"mlops": MLOPS_BEHAVIOUR, "docker": DOCKER_BEHAVIOUR, "sudo": SUDO_BEHAVIOUR,
                 "python": PYTHON_BEHAVIOUR}
    for name in standins:
        script = calls / f"{name}-standin"
        script.write_text(STANDIN.format(python=sys.executable, name=name, log=str(calls / name),
                                         behave=behaviour.get(name, ""),
                                         exits=str(calls / "exits.json")))
        script.chmod(0o755)
        tools[name] = script
    return Runner(tmp_path / "run", remote, tools, github(sha, **gh), vars=vars,
                  secrets=secrets, env={"PIP_NO_INDEX": "1"})  # mlops is installed: no network


def calls(tmp_path: Path, name: str) -> list[dict]:
    log = tmp_path / "calls" / name
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def argvs(tmp_path: Path, name: str) -> list[list[str]]:
    return [c["argv"] for c in calls(tmp_path, name)]


def seed(runner: Runner, artifacts: dict[str, dict[str, str]]) -> None:
    for name, files in artifacts.items():
        for rel, text in files.items():
            (runner.artifacts / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (runner.artifacts / name / rel).write_text(text)


PLAN = {"matrix": '{"include":[{"shard":0,"components":"model"},{"shard":1,"components":"x"}]}',
        "shards": "2"}
LOGIN = [["login", "registry.example.test", "--username", "robot", "--password-stdin"]]
IMAGE = f"{REGISTRY}/models/training:run-42-1"
STATUS = ["status", "--env", "prod", "--wait", "--timeout", "600"]
STAGING_DOCKER = [*LOGIN, ["build", "--quiet", "--tag", IMAGE, "--file", "-", "{temp}/run"],
                  ["push", "--quiet", IMAGE],
                  ["image", "inspect", "--format", "{{{{index .RepoDigests 0}}}}", IMAGE]]
ROLLOUT_RUN = ["rollout", "run", "--env", "prod", "--wait-approval", "--timeout", "1h"]

# (workflow, job, variant): what the job is given, and every command it must run, in order.
JOBS = {
    ("main.yml", "plan", ""): dict(
        mlops=[["--version"], ["build", "--plan", "--shards", "4", "--output", "{temp}/plan.json"]],
        uploads=["build-plan"], outputs={"shards": "2"}),
    ("main.yml", "build", ""): dict(
        needs={"plan": {"outputs": PLAN}}, shard=1, artifacts={"build-plan": {"plan.json": "{}"}},
        mlops=[["--version"], ["build", "--shard", "1", "--plan", "{temp}/plan.json", "--push",
                               "--output", "{temp}/part-1.json"]], uploads=["build-part-1"]),
    ("main.yml", "merge", ""): dict(
        needs={"plan": {"outputs": PLAN}, "build": {}},
        artifacts={"build-plan": {"plan.json": "{}"}, "build-part-0": {"part-0.json": "{}"},
                   "build-part-1": {"part-1.json": "{}"}},
        mlops=[["--version"], ["build", "--merge", "{temp}/parts/part-0.json",
                               "{temp}/parts/part-1.json", "--plan", "{temp}/plan.json",
                               "--output", "{temp}/build.json"]], uploads=["build-record"]),
    ("main.yml", "promote-dev", ""): dict(
        needs={"merge": {}}, artifacts={"build-record": {"build.json": "{}"}},
        mlops=[["--version"], ["promote", "--to", "dev", "--build", "{temp}/build.json"]]),
    ("staging.yml", "promote-staging", ""): dict(
        mlops=[["--version"], ["run", "training", "--env", "dev", "--local", "--output-dir",
                               "{temp}/run"],
               ["promote", "--to", "staging", "--from", "dev", "--metrics",
                "{temp}/run/metrics.json", "--model-uri", f"oci://{IMAGE.split(':')[0]}@{DIGEST}"]],
        docker=STAGING_DOCKER, uploads=["evaluation"]),
    ("staging.yml", "promote-staging", "clear-hold"): dict(
        inputs={"clear-hold": True},
        mlops=[["--version"], ["run", "training", "--env", "dev", "--local", "--output-dir",
                               "{temp}/run"],
               ["promote", "--to", "staging", "--from", "dev", "--metrics",
                "{temp}/run/metrics.json", "--model-uri", f"oci://{IMAGE.split(':')[0]}@{DIGEST}",
                "--clear-hold"]], docker=STAGING_DOCKER),
    # retrain.yml calls staging.yml with keep-champion: a failed gate (exit 3) ends green.
    ("staging.yml", "promote-staging", "keep-champion"): dict(
        inputs={"keep-champion": True}, exits={"promote --to": 3},
        mlops=[["--version"], ["run", "training", "--env", "dev", "--local", "--output-dir",
                               "{temp}/run"],
               ["promote", "--to", "staging", "--from", "dev", "--metrics",
                "{temp}/run/metrics.json", "--model-uri", f"oci://{IMAGE.split(':')[0]}@{DIGEST}"]],
        docker=STAGING_DOCKER, summary="### Kept the champion"),
    ("prod.yml", "canary", "start"): dict(
        inputs={"action": "start"},
        mlops=[["--version"], ["rollout", "start", "--env", "prod"], STATUS, ROLLOUT_RUN, STATUS]),
    ("prod.yml", "canary", "start-clear-hold"): dict(
        inputs={"action": "start", "clear-hold": True, "approval-timeout": "2h"},
        mlops=[["--version"], ["rollout", "start", "--env", "prod", "--clear-hold"], STATUS,
               [*ROLLOUT_RUN[:-1], "2h"], STATUS]),
    ("prod.yml", "canary", "resume"): dict(
        inputs={"action": "resume"}, mlops=[["--version"], STATUS, ROLLOUT_RUN, STATUS]),
    ("prod.yml", "canary", "abort"): dict(
        inputs={"action": "abort"},
        mlops=[["--version"], ["rollout", "abort", "--env", "prod", "--reason",
                               "aborted by octocat (run 42)"], STATUS]),
    ("prod.yml", "canary", "rollback"): dict(
        inputs={"action": "rollback"},
        mlops=[["--version"], ["rollback", "--env", "prod", "--reason",
                               "rolled back by octocat (run 42)"], STATUS]),
    # A pull request: its merge ref is stood in for by the branch `feature`.
    ("pr.yml", "check", ""): dict(
        gh={"event": "pull_request", "ref": "feature", "base_ref": "main"},
        standins=("mlops", "docker", "pre-commit"),  # its hooks install from the network
        mlops=[["--version"], ["validate"], ["build", "--changed-since", "origin/main",
                                             "--no-push"]],
        other={"pre-commit": [["run", "--all-files", "--show-diff-on-failure"]]}),
    ("ci.yml", "pre-commit", ""): dict(
        gh={"event": "pull_request", "base_ref": "main"}, standins=("python", "pre-commit"),
        mlops=[], docker=[], other={"python": [["-m", "pip", "install", "-e", ".[test]"]],
                                    "pre-commit": [["run", "--all-files",
                                                    "--show-diff-on-failure"]]}),
    # apt-get would change this machine and `make test` is the whole suite: stand-ins.
    ("ci.yml", "test", ""): dict(
        gh={"event": "pull_request", "base_ref": "main"},
        standins=("mlops", "sudo", "apt-get", "make"), docker=[],
        mlops=[["build", "--changed-since", "origin/main", "--no-push"]],
        other={"apt-get": [["update", "-q"], ["install", "-y", "-q", "--no-install-recommends",
                                              "debian-archive-keyring"]],
               "make": [["test"]]}),
}
JOB_IDS = ["-".join(filter(None, (w.removesuffix(".yml"), j, v))) for w, j, v in JOBS]
SECRETS = {"MLOPS_REGISTRY_PASSWORD": "hunter2", "MLOPS_GIT_TOKEN": "ghp_promote",
           "KUBECONFIG": "apiVersion: v1\nkind: Config",
           "MLOPS_PROMETHEUS_URL": "https://prometheus.example.test"}
VARS = {"MLOPS_PIP_SPEC": "mlops", "MLOPS_REGISTRY_USERNAME": "robot"}


def run_listed(key, scaffold_remote, this_remote, tmp_path, **override):
    workflow_file, job_id, _ = key
    spec = {**JOBS[key], **override}
    ci = workflow_file == "ci.yml"
    remote, sha = this_remote if ci else scaffold_remote
    gh = dict(spec.get("gh", {}))
    runner = make_runner(tmp_path, remote, sha, vars=VARS, secrets=SECRETS,
                         standins=spec.get("standins", ("mlops", "docker")),
                         exits=spec.get("exits"), **gh)
    seed(runner, spec.get("artifacts", {}))
    workflow = load_workflow((CI_DIR if ci else SCAFFOLD_DIR) / workflow_file)
    matrix = None
    if "shard" in spec:
        entries = expand_matrix(runner, workflow, job_id, spec["needs"])
        assert [e["shard"] for e in entries] == [0, 1]
        matrix = entries[spec["shard"]]
    job = runner.run_job(workflow, job_id, inputs=spec.get("inputs"), needs=spec.get("needs"),
                         matrix=matrix)
    return runner, job, spec


def expected(spec_calls, job) -> list[list[str]]:
    return [[a.format(temp=job.temp) for a in argv] for argv in spec_calls]


def test_every_job_with_steps_is_listed():
    listed = {(w, j) for w, j, _ in JOBS}
    for directory in (CI_DIR, SCAFFOLD_DIR):
        for path in sorted(directory.glob("*.yml")):
            for job_id, job in load_workflow(path)["jobs"].items():
                if "steps" in job:
                    assert (path.name, job_id) in listed, f"{path.name}: job {job_id} not run"


@pytest.mark.parametrize("key", list(JOBS), ids=JOB_IDS)
def test_the_job_runs_on_a_bare_runner(key, scaffold_remote, this_remote, tmp_path):
    runner, job, spec = run_listed(key, scaffold_remote, this_remote, tmp_path)
    assert job.result == "success" and job.failed() == [], job.log()
    assert argvs(tmp_path, "mlops") == expected(spec["mlops"], job)
    assert argvs(tmp_path, "docker") == expected(spec.get("docker", LOGIN), job)
    for login in (c for c in calls(tmp_path, "docker") if c["argv"][0] == "login"):
        assert login["stdin"] == "hunter2"
    for name, expect in spec.get("other", {}).items():
        assert argvs(tmp_path, name) == expected(expect, job), name
    for name in spec.get("uploads", []):
        assert any((runner.artifacts / name).iterdir()), name
    for name, value in spec.get("outputs", {}).items():
        assert job.outputs[name] == value
    if "summary" in spec:
        assert spec["summary"] in job.summary
    for call in calls(tmp_path, "mlops"):
        if key[0] == "prod.yml" and call["argv"] != ["--version"]:
            assert Path(call["env"]["KUBECONFIG"]).read_text() == SECRETS["KUBECONFIG"] + "\n"


def test_plan_outputs_a_matrix_that_build_expands_into_its_shards(scaffold_remote, this_remote,
                                                                  tmp_path):
    runner, job, _ = run_listed(("main.yml", "plan", ""), scaffold_remote, this_remote, tmp_path)
    entries = expand_matrix(runner, load_workflow(SCAFFOLD_DIR / "main.yml"), "build",
                            {"plan": {"outputs": job.outputs}})
    assert [e["shard"] for e in entries] == [0, 1]


def test_promotion_jobs_store_the_token_for_the_server(scaffold_remote, this_remote, tmp_path):
    runner, job, _ = run_listed(("main.yml", "promote-dev", ""), scaffold_remote, this_remote,
                                tmp_path)
    home = job.temp.parent / "home"
    assert (home / ".git-credentials").read_text().strip() == \
        "https://x-access-token:ghp_promote@github.com"
    assert "email = 41898282+github-actions[bot]@users.noreply.github.com" in (home / ".gitconfig").read_text()


@pytest.mark.parametrize("vars, secrets, login", [
    ({"MLOPS_REGISTRY": "ghcr.io/org/ml"}, {}, (["login", "ghcr.io", "--username", "octocat",
                                                 "--password-stdin"], "ghs_runtoken")),
    ({"MLOPS_REGISTRY": "quay.io/org/ml"}, {"MLOPS_REGISTRY_PASSWORD": "p"},
     (["login", "quay.io", "--username", "octocat", "--password-stdin"], "p")),
    ({}, {}, None),  # the registry in mlops.yaml, no password: no login
])
def test_the_registry_login_takes_the_branch_for_the_registry(scaffold_remote, tmp_path, vars,
                                                              secrets, login):
    remote, sha = scaffold_remote
    runner = make_runner(tmp_path, remote, sha, vars={"MLOPS_PIP_SPEC": "mlops", **vars},
                         secrets=secrets)
    job = runner.run_job(load_workflow(SCAFFOLD_DIR / "main.yml"), "plan")
    assert job.result == "success", job.log()
    logins = [(c["argv"], c["stdin"]) for c in calls(tmp_path, "docker")]
    assert logins == ([login] if login else [])
    assert calls(tmp_path, "mlops")[1]["env"]["MLOPS_REGISTRY"] == vars.get("MLOPS_REGISTRY", "")


def test_a_job_stops_without_mlops_pip_spec(scaffold_remote, tmp_path):
    remote, sha = scaffold_remote
    job = make_runner(tmp_path, remote, sha).run_job(
        load_workflow(SCAFFOLD_DIR / "main.yml"), "plan")
    assert job.result == "failure"
    assert [s.outcome for s in job.steps] == ["success", "success", "failure", "skipped",
                                              "skipped", "skipped"]
    assert "set the repository variable MLOPS_PIP_SPEC" in job.steps[2].stdout
    assert argvs(tmp_path, "mlops") == []


RELEASE = SimpleNamespace(id="r-0123456789ab", digest="sha256:" + "cd" * 32)


def _approval_missing() -> str:
    """The exit-4 line of a first release into prod without its approval, as mlops words it."""
    with pytest.raises(ApprovalError) as refused:
        Approvals("prod").of(RELEASE)
    return f"mlops: error: {refused.value}\n"


# mlops/services/approvals.py `gather`, when the trust root lists no allowed signers: the
# scaffold's default (`release_managers: []`, no keys in .mlops/allowed_signers).
NO_SIGNERS = ("mlops: error: no allowed signers in the trust root (the branch (no allowed "
              "signers or release managers yet); .mlops/allowed_signers on the branch): no "
              "release manager can approve\n")


def test_the_no_signers_refusal_is_worded_as_the_workflow_expects():
    assert "no release manager can approve" in (
        REPO / "mlops" / "services" / "approvals.py").read_text()


@pytest.mark.parametrize("stderr, hint", [
    (_approval_missing, "**Next:** A release manager runs mlops approve --env prod --release "
                        f"{RELEASE.id} --digest {RELEASE.digest} (with --key their SSH key); "
                        "then run this workflow with action start again."),
    (lambda: NO_SIGNERS, "**Next:** No release manager can approve yet: add their SSH keys to "
                         ".mlops/allowed_signers and their principals to "
                         "approvals.release_managers in mlops.yaml, and push that;"),
    (lambda: "mlops: error: no signed provenance for r.example/ml/model@sha256:ab (tag x)\n",
     "**Next:** An approval or provenance check refused the release (the error above says "
     "which)"),
], ids=["approval-missing", "no-release-managers", "other-exit-4"])
def test_a_canary_start_that_needs_approval_stops_and_says_what_next(scaffold_remote,
                                                                     this_remote, tmp_path,
                                                                     stderr, hint):
    key = ("prod.yml", "canary", "start")
    err = stderr()
    runner, job, _ = run_listed(key, scaffold_remote, this_remote, tmp_path,
                                exits={"rollout start": [4, err]})
    assert job.result == "failure"
    outcomes = {s.name: s.outcome for s in job.steps}
    assert outcomes["Start the canary"] == "failure"
    assert outcomes["Wait for Argo CD to sync the canary"] == "skipped"
    assert outcomes["Wait for the cluster to converge"] == "success"  # always(), after a failure
    assert hint in job.summary, job.summary
    assert job.summary.count("**Next:**") == 1, job.summary
    start = next(s for s in job.steps if s.name == "Start the canary")
    assert err.strip() in start.stderr, start.stderr  # the error itself is still shown
    assert argvs(tmp_path, "mlops") == [["--version"], ["rollout", "start", "--env", "prod"],
                                        STATUS]


@pytest.mark.parametrize("inputs, exits", [
    ({}, {"promote --to": 3}),  # after a push: a failed gate is news
    ({"keep-champion": True}, {"promote --to": 1}),  # anything but a gate: fails
    ({"keep-champion": True}, {"run training": 1}),
])
def test_only_a_gate_failure_of_a_retrain_ends_green(scaffold_remote, this_remote, tmp_path,
                                                     inputs, exits):
    key = ("staging.yml", "promote-staging", "")
    _, job, _ = run_listed(key, scaffold_remote, this_remote, tmp_path, inputs=inputs,
                           exits=exits)
    assert job.result == "failure"
    assert "Kept the champion" not in job.summary


def test_staging_refuses_when_dev_moved_on_while_it_trained(scaffold_remote, tmp_path):
    remote, sha = scaffold_remote
    base = tmp_path / "moved"
    git(tmp_path, "clone", "-q", "--bare", str(remote), str(tmp_path / "moved.git"))
    git(tmp_path, "clone", "-q", str(tmp_path / "moved.git"), str(base))
    runner = make_runner(tmp_path, tmp_path / "moved.git", sha, vars=VARS, secrets=SECRETS)
    # The promotion into dev lands between the checkout and the check: a stand-in mlops
    # that pushes one when it trains.
    (base / "environments" / "dev" / "release.yaml").write_text("components: {}\n")
    for args in (["add", "-A"], ["-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm",
                                 "promote(dev)"]):
        git(base, *args)
    hook = runner.bin / "mlops"
    real = hook.resolve()
    hook.unlink()
    hook.write_text(f"#!/bin/bash\n[[ $1 == run ]] && git -C {base} push -q origin main\n"
                    f"exec {real} \"$@\"\n")
    hook.chmod(0o755)
    job = runner.run_job(load_workflow(SCAFFOLD_DIR / "staging.yml"), "promote-staging")
    assert job.result == "failure"
    check = next(s for s in job.steps if s.name.startswith("Check that dev"))
    assert check.outcome == "failure" and "dev's release changed" in check.stdout
    assert [a[0] for a in argvs(tmp_path, "mlops")] == ["--version", "run"]  # no promote


# -- the emulator itself -----------------------------------------------------------


def tiny(tmp_path: Path, steps: list[dict], **job) -> tuple[Runner, dict]:
    remote = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    work = tmp_path / "w"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    (work / "f").write_text("x")
    git(work, "add", "f")
    git(work, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "x")
    git(work, "push", "-q", "origin", "HEAD:main")
    runner = make_runner(tmp_path, remote, git(work, "rev-parse", "HEAD"), standins=())
    return runner, {"on": {"push": None}, "jobs": {"j": {"steps": steps, **job}}}


@pytest.mark.parametrize("expr", [
    "${{ github.no_such_thing }}", "${{ toJSON(github) }}", "${{ env.X }}",
    "${{ matrix.shard }}", "${{ inputs.nope }}", "${{ vars.A > 1 }}", "${{ steps.x.outputs.y }}",
])
def test_an_expression_the_emulator_does_not_know_raises(tmp_path, expr):
    runner, workflow = tiny(tmp_path, [{"run": f"echo '{expr}'"}])
    with pytest.raises(ExpressionError):
        runner.run_job(workflow, "j")


def test_a_tool_the_ubuntu_image_lacks_fails_the_step(tmp_path):
    # crane (go-containerregistry) is not on GitHub's ubuntu images, nor on this PATH.
    runner, workflow = tiny(tmp_path, [{"run": "crane digest busybox"}, {"run": "echo after"},
                                       {"if": "failure()", "run": "echo cleanup"}])
    job = runner.run_job(workflow, "j")
    assert [(s.outcome, s.code) for s in job.steps] == [("failure", 127), ("skipped", None),
                                                       ("success", 0)]
    assert "crane: command not found" in job.steps[0].stderr and job.result == "failure"


def test_outputs_env_path_and_multiline_values_pass_between_steps(tmp_path):
    runner, workflow = tiny(tmp_path, [
        {"uses": "actions/checkout@v6"},
        {"id": "a", "run": 'printf "x=1\\nmany<<EOF\\nl1\\nl2\\nEOF\\n" >> "$GITHUB_OUTPUT"\n'
                           'echo "FOO=bar" >> "$GITHUB_ENV"\nmkdir -p "$RUNNER_TEMP/b"\n'
                           'printf "#!/bin/sh\\necho tool\\n" > "$RUNNER_TEMP/b/t"\n'
                           'chmod +x "$RUNNER_TEMP/b/t" 2>/dev/null || '
                           'python3 -c "import os,sys;os.chmod(sys.argv[1],0o755)" "$RUNNER_TEMP/b/t"\n'
                           'echo "$RUNNER_TEMP/b" >> "$GITHUB_PATH"'},
        {"if": "steps.a.outputs.x == '1' && github.event_name == 'PUSH'",
         "env": {"M": "${{ steps.a.outputs.many }}"},
         "run": 'test "$FOO" = bar && test "$M" = "$(printf "l1\\nl2")" && t && test -f f'},
    ], outputs={"o": "${{ steps.a.outputs.x }}-${{ hashFiles('f') != '' }}"})
    job = runner.run_job(workflow, "j")
    assert job.result == "success", job.log()
    assert job.outputs == {"o": "1-true"} and job.steps[2].stdout == "tool\n"


def test_nothing_of_the_test_machines_environment_leaks_in(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAKY_SECRET", "x")
    runner, workflow = tiny(tmp_path, [{"run": "env > \"$RUNNER_TEMP/env\""}])
    job = runner.run_job(workflow, "j")
    names = {line.split("=", 1)[0] for line in (job.temp / "env").read_text().splitlines()}
    assert "LEAKY_SECRET" not in names and names <= {
        "HOME", "CI", "GITHUB_ACTIONS", "LANG", "RUNNER_OS", "RUNNER_TEMP", "GITHUB_WORKSPACE",
        "GITHUB_JOB", "GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY",
        "PATH", "PWD", "SHLVL", "_", "OLDPWD", "PIP_NO_INDEX",
        *(f"GITHUB_{k.upper()}" for k in github("x"))} - {"GITHUB_TOKEN"}


# -- end to end: main.yml with the real mlops, registry and remote ----------------------


@pytest.mark.slow
def test_main_plans_builds_in_shards_merges_and_promotes_into_dev(project, registry,
                                                                  docker_engine, tmp_path):
    from tests.support.promotion import Playground, repo_files
    _, ns = registry
    play = Playground(tmp_path, project(repo_files(ns)))
    real = tool("mlops")
    assert real is not None
    tools: dict[str, str | Path] = {n: p for n in UBUNTU if (p := shutil.which(n))}
    tools.update(python=sys.executable, python3=sys.executable, git=shutil.which("git") or "git",
                 docker=shutil.which("docker") or "docker", mlops=real)
    runner = Runner(tmp_path / "run", play.remote, tools, github(play.remote_head()),
                    vars={"MLOPS_REGISTRY": ns, "MLOPS_PIP_SPEC": "mlops",
                          "MLOPS_BUILD_SHARDS": "2"},
                    env={"PIP_NO_INDEX": "1"})  # `Install mlops` finds it installed
    workflow = load_workflow(SCAFFOLD_DIR / "main.yml")

    def ran(job_id: str, **kw):
        job = runner.run_job(workflow, job_id, **kw)
        assert job.result == "success", job.log()
        assert "using " + ns.split("/")[0] + " without logging in" in job.log()
        return job

    plan = ran("plan")
    needs = {"plan": {"outputs": plan.outputs}}
    shards = expand_matrix(runner, workflow, "build", needs)
    assert plan.outputs["shards"] == "2" and len(shards) == 2
    for entry in shards:  # each its own checkout, HOME and so Docker configuration
        ran("build", needs=needs, matrix=entry, label=f"build-{entry['shard']}")
    merge = ran("merge", needs={**needs, "build": {}})
    record = json.loads((merge.temp / "build.json").read_text())
    ran("promote-dev", needs={"merge": {}})
    assert play.remote_log()[0].startswith("promote(dev)")
    release = yaml.safe_load(play.remote_show("environments/dev/release.yaml"))
    text = json.dumps(release)
    for build in record["builds"]:
        assert build["digest"] and build["digest"] in text, build["component"]
