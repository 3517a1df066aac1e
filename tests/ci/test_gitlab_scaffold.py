"""The `.gitlab-ci.yml` that `mlops init --ci gitlab` writes
(mlops/scaffold/gitlab/dot-gitlab-ci.yml).

GitLab's own CI schema (vendored in check-jsonschema, so offline) checks its
structure; every `mlops ...` it runs is checked against the CLI's parser; and
each job's scripts run here as GitLab would run them (bash, `set -eo
pipefail`, the job's variables), on a PATH that holds only python, git and a
stand-in `mlops` that records its arguments: no other tool is needed.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from mlops.ci import gitlab
from mlops.cli import main
from tests.support.services import require
from tests.support.workflowcheck import check_invocation, mlops_invocations

SCAFFOLD = Path(str(files("mlops") / "scaffold" / "gitlab" / "dot-gitlab-ci.yml"))
REPORTS = gitlab.DEFAULT_REPORTS_DIR
JOBS = {"test": [["validate"]], "build": [["build", "--push", "--output", "build.json"]],
        "promote-dev": [["promote", "--to", "dev", "--build", "build.json"]]}
STUB = """#!{python}
import json, os, sys
with open(os.environ["MLOPS_CALLS"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def load() -> dict:
    return yaml.safe_load(SCAFFOLD.read_text())


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.gitlab-ci", str(path)], capture_output=True, text=True,
                          timeout=120)


# -- structure ---------------------------------------------------------------------


def test_gitlabs_ci_schema_accepts_the_scaffold():
    proc = schema_check(SCAFFOLD)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_misspelt_keyword(tmp_path):
    bad = tmp_path / ".gitlab-ci.yml"
    bad.write_text(SCAFFOLD.read_text().replace("resource_group:", "resource_grup:"))
    assert schema_check(bad).returncode == 1


def test_jobs_mirror_the_github_main_workflow():
    ci = load()
    assert ci["stages"] == ["test", "build", "promote"]
    assert {k for k in ci if not k.startswith(".")} - {"workflow", "stages", "variables"} == set(JOBS)
    default_branch = [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert ci["build"]["rules"] == ci["promote-dev"]["rules"] == default_branch
    assert ci["promote-dev"]["needs"] == ["build"]
    # Promotions into one environment queue, as GitHub's concurrency group does.
    assert ci["promote-dev"]["resource_group"] == "mlops-promote-dev"
    assert ci["variables"]["GIT_DEPTH"] == "0"  # validate and promote read history


def test_promotion_commits_start_no_pipeline():
    never = load()["workflow"]["rules"][0]
    assert never["when"] == "never" and "Mlops-Action: " in never["if"]
    from mlops import trailers
    assert trailers.ACTION == "Mlops-Action"


def test_every_job_keeps_the_reports_mlops_writes():
    ci = load()
    for job in JOBS:
        artifacts = ci[job]["artifacts"]
        assert artifacts["when"] == "always", job  # a failed job's report matters most
        assert artifacts["reports"]["junit"] == f"{REPORTS}/*.xml", job
    for job in ("build", "promote-dev"):
        assert ci[job]["artifacts"]["reports"]["dotenv"] == f"{REPORTS}/{gitlab.DOTENV_FILE}"
    assert ci["build"]["artifacts"]["paths"] == ["build.json"]  # promote-dev reads it


def test_every_mlops_invocation_exists_in_the_cli():
    ci = load()
    scripts = [line for job in (".mlops", *JOBS) for key in ("before_script", "script")
               for line in ci[job].get(key, [])]
    invocations = [argv for script in scripts for argv in mlops_invocations(script)]
    assert ["build", "--push", "--output", "build.json"] in invocations
    assert [p for argv in invocations for p in check_invocation(argv)] == []


# -- the scripts, run ------------------------------------------------------------------


class Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def downloads(tmp_path):
    """A local web server standing in for the kubectl release site."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: Files(*a, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def runner(tmp_path, downloads, capsys, monkeypatch):
    """A checkout made by `mlops init --ci gitlab`, and `run(job, **env)` for its jobs."""
    for key, value in {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x",
                       "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@x"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert main(["init", "ml", "--ci", "gitlab", "--registry", "registry.example.test/g/ml"]) == 0
    capsys.readouterr()
    # As the runner leaves a checkout: origin with the job's token, HEAD detached.
    for args in (["remote", "add", "origin", "https://gitlab-ci-token:job@gitlab.example.test/g/ml.git"],
                 ["checkout", "-q", "--detach"]):
        subprocess.run(["git", *args], cwd=tmp_path / "ml", check=True)
    bare = tmp_path / "bin"
    bare.mkdir()
    (tmp_path / "home").mkdir()
    for name, target in (("python", sys.executable), ("git", _which("git"))):
        (bare / name).symlink_to(target)
    (bare / "mlops").write_text(STUB.format(python=sys.executable))
    (bare / "mlops").chmod(0o755)
    www, url = downloads
    (www / "kubectl").write_bytes(b"#!/bin/sh\necho fake kubectl\n")
    (www / "kubectl.sha256").write_text(hashlib.sha256((www / "kubectl").read_bytes()).hexdigest())

    def run(job: str, **env: str) -> subprocess.CompletedProcess:
        return _run_job(tmp_path, job, {
            "PATH": str(bare), "HOME": str(tmp_path / "home"), "MLOPS_PIP_SPEC": "mlops",
            "PIP_NO_INDEX": "1",  # mlops is installed: pip must not need the network
            "KUBECTL_URL": f"{url}/kubectl", "KUBECTL_DIR": str(bare),
            "MLOPS_CALLS": str(tmp_path / "calls"), **env})

    return run


def _which(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} not installed")
    return str(path)


def _run_job(base: Path, job: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `job` as GitLab's shell executor would: its variables, then before_script
    and script in one bash with `set -eo pipefail`, in the checkout."""
    ci = load()
    spec = {**ci[".mlops"], **ci[job]}
    variables = {**ci["variables"], **spec.get("variables", {})}
    lines = [*spec["before_script"], *spec["script"]]
    script = "set -eo pipefail\n" + "\n".join(lines) + "\n"
    (base / "calls").unlink(missing_ok=True)
    return subprocess.run(["/bin/bash", "-c", script], cwd=base / "ml", capture_output=True,
                          text=True, timeout=300, env={**variables, **env})


def calls(base: Path) -> list[list[str]]:
    return [json.loads(line) for line in (base / "calls").read_text().splitlines()]


@pytest.mark.parametrize("job", list(JOBS))
def test_each_job_runs_with_only_python_and_git(runner, tmp_path, job):
    env = {"CI_PROJECT_URL": "https://gitlab.example.test/g/ml", "CI_SERVER_HOST":
           "gitlab.example.test", "CI_COMMIT_BRANCH": "main", "MLOPS_GIT_TOKEN": "glpat-x"}
    proc = runner(job, **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert calls(tmp_path) == [["--version"], *JOBS[job]]
    assert (tmp_path / "bin" / "kubectl").read_bytes().startswith(b"#!/bin/sh")
    assert os.access(tmp_path / "bin" / "kubectl", os.X_OK)


def test_promote_dev_pushes_with_the_promotion_token(runner, tmp_path):
    proc = runner("promote-dev", CI_PROJECT_URL="https://gitlab.example.test/g/ml",
                  CI_SERVER_HOST="gitlab.example.test", CI_COMMIT_BRANCH="main",
                  MLOPS_GIT_TOKEN="glpat-secret")
    assert proc.returncode == 0, proc.stderr
    repo = tmp_path / "ml"
    git = ["git", "-C", str(repo)]
    home = {**os.environ, "HOME": str(tmp_path / "home")}
    fill = subprocess.run([*git, "credential", "fill"], input="url=https://gitlab.example.test/g/ml\n\n",
                          capture_output=True, text=True, env=home)
    assert "password=glpat-secret" in fill.stdout.splitlines()
    assert subprocess.run([*git, "remote", "get-url", "origin"], capture_output=True, text=True,
                          env=home).stdout.strip() == "https://gitlab.example.test/g/ml.git"
    assert subprocess.run([*git, "symbolic-ref", "--short", "HEAD"], capture_output=True,
                          text=True, env=home).stdout.strip() == "main"


def test_the_registry_login_writes_docker_credentials(runner, tmp_path):
    proc = runner("build", CI_REGISTRY="registry.example.test", CI_REGISTRY_USER="gitlab-ci-token",
                  CI_REGISTRY_PASSWORD="job-token")
    assert proc.returncode == 0, proc.stderr
    config = tmp_path / "home" / ".docker" / "config.json"
    auth = json.loads(config.read_text())["auths"]["registry.example.test"]["auth"]
    assert base64.b64decode(auth) == b"gitlab-ci-token:job-token"
    assert config.stat().st_mode & 0o777 == 0o600
    proc = runner("build", MLOPS_REGISTRY="other.example.test/x", MLOPS_REGISTRY_PASSWORD="p",
                  MLOPS_REGISTRY_USERNAME="u")
    auths = json.loads(config.read_text())["auths"]
    assert base64.b64decode(auths["other.example.test"]["auth"]) == b"u:p"
    assert "registry.example.test" in auths  # merged, not replaced


def test_a_job_stops_without_mlops_pip_spec(runner, tmp_path):
    proc = runner("test", MLOPS_PIP_SPEC="")
    assert proc.returncode == 1 and "set the CI/CD variable MLOPS_PIP_SPEC" in proc.stderr
    assert not (tmp_path / "calls").exists()


def test_a_kubectl_download_that_does_not_match_its_checksum_stops_the_job(runner, tmp_path,
                                                                         downloads):
    www, _ = downloads
    (www / "kubectl.sha256").write_text("0" * 64 + "  kubectl\n")
    proc = runner("test")
    assert proc.returncode != 0 and "SHA-256 mismatch" in proc.stderr
    assert not (tmp_path / "bin" / "kubectl").exists()
    assert calls(tmp_path) == [["--version"]]  # validate never ran


def test_init_commits_the_scaffold_as_it_is(runner, tmp_path):
    repo = tmp_path / "ml"
    assert (repo / ".gitlab-ci.yml").read_bytes() == SCAFFOLD.read_bytes()
    assert subprocess.run(["git", "ls-files", ".gitlab-ci.yml"], cwd=repo, capture_output=True,
                          text=True).stdout.strip() == ".gitlab-ci.yml"


def test_the_docs_name_every_job_variable_and_report():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "gitlab-ci.md").read_text()
    text = SCAFFOLD.read_text()
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    used |= set(re.findall(r"environ(?:\.get\(|\[)[\"']([A-Z][A-Z0-9_]*)", text))
    ours = {n for n in used if not n.startswith(("CI_", "GITLAB_", "DOCKER_"))}
    names = ours | set(JOBS) | set(gitlab.PER_COMMAND) | {var for _, var in gitlab.FACTS} \
        | {gitlab.REPORTS_DIR_ENV, f"{REPORTS}/{gitlab.DOTENV_FILE}", f"{REPORTS}/junit-"}
    assert "MLOPS_GIT_TOKEN" in ours and "KUBECTL_URL" in ours  # the scan finds them
    assert sorted(n for n in names if f"`{n}" not in docs) == []
