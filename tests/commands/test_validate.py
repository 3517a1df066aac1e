"""`mlops validate` on a really promoted repository: clean, then one thing broken at a time.

The repository is built on the real engine and registry and promoted to dev
and staging once per module; each test validates its own copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from mlops import argocd
from mlops.config import load_config
from tests.commands.conftest import GOOD
from tests.conftest import Project, git, tiny_component
from tests.support.crds import CRDS, schemas
from tests.support.promotion import repo_files

IDENTITY = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
            "GIT_COMMITTER_EMAIL": "t@x"}


def _mlops(repo, *args):
    # As in a GitHub Actions job: each command appends its Markdown summary.
    summary = str(repo.parent / "summary.md")
    env = {**os.environ, **IDENTITY, "GITHUB_STEP_SUMMARY": summary}
    proc = subprocess.run([sys.executable, "-m", "mlops", *args, "--repo", str(repo)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def promoted(tmp_path_factory, registry_server, docker_engine):
    """A clone whose dev and staging hold a real release (serve included, as base needs)."""
    schemas()  # fail early, and clearly, without the CRDs
    base = tmp_path_factory.mktemp("validate")
    ns = f"{registry_server.host}/val{uuid.uuid4().hex[:8]}"
    remote, clone = base / "remote.git", base / "clone"
    git(base, "init", "-q", "--bare", "-b", "main", str(remote))
    git(base, "clone", "-q", str(remote), str(clone))
    for rel, content in {**repo_files(ns), **tiny_component("serve")}.items():
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        (clone / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    (clone / argocd.ARGOCD_DIR).mkdir(parents=True)  # as `mlops init` writes them
    (clone / argocd.APPLICATIONS_FILE).write_text(argocd.render_applications(
        load_config(clone, {}), "https://git.example.com/ml.git"))
    (clone / argocd.ARGOCD_DIR / "kustomization.yaml").write_text(argocd.render_kustomization())
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "init")
    git(clone, "push", "-q", "origin", "main")
    _mlops(clone, "build", "--output", str(base / "build.json"))
    _mlops(clone, "promote", "--to", "dev", "--build", str(base / "build.json"))
    (base / "m.json").write_text(json.dumps(GOOD))
    _mlops(clone, "promote", "--to", "staging", "--from", "dev", "--metrics", str(base / "m.json"))
    git(clone, "pull", "-q", "--ff-only")
    return clone


@pytest.fixture
def repo(promoted, tmp_path, capsys, monkeypatch) -> Project:
    copy = tmp_path / "repo"
    shutil.copytree(promoted, copy, symlinks=True)
    return Project(copy, capsys, monkeypatch)


def validate(repo: Project, *args: str):
    return repo.run("validate", "--crds", str(CRDS), *args)


def edit(repo: Project, rel: str, old: str, new: str, count: int = 1) -> None:
    path = repo.path / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new, count))


def only_problem(result) -> str:
    assert result.code == 1, result.out + result.err
    problems = [line for line in result.out.splitlines()[:-1] if not re.match(r"^\w+: \d", line)
                and not line.startswith(("components:", "schemas:"))]
    assert len(problems) == 1, result.out
    assert result.out.splitlines()[-1] == "1 problem"
    return problems[0]


def test_a_promoted_repository_is_valid_and_nothing_is_written(repo):
    before = repo.status()
    result = validate(repo)
    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[-1] == "ok"
    assert "dev: 3 resources rendered, 3 checked against CRDs, 1 compiled pipelines, release r-" \
        in result.out
    assert "prod: 1 resources rendered, 1 checked against CRDs, 0 compiled pipelines, " \
        "not promoted yet" in result.out
    assert repo.status() == before


def test_json_lists_checks_and_problems(repo):
    edit(repo, "mlops.yaml", "threshold: 0.9", "threshold: high")
    result = validate(repo, "--json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["ok"] is False and doc["crds"] == str(CRDS)
    assert [p["check"] for p in doc["problems"]] == ["config"]
    assert doc["problems"][0]["message"].startswith("mlops.yaml:")


def test_a_bad_config(repo):
    edit(repo, "mlops.yaml", "threshold: 0.9", "threshold: high")
    assert re.match(r"^mlops\.yaml:\d+: .*threshold", only_problem(validate(repo)))


def test_a_bad_component_spec(repo):
    edit(repo, "components/train/component.yaml", "version: 0.1.0", "version: one")
    line = only_problem(validate(repo))
    assert line.startswith("components/train/component.yaml:2:"), line


@pytest.mark.parametrize(("target", "problem"), [
    ("/nonexistent", "file not found"), ("component.yaml", "Too many levels of symbolic links")])
def test_a_component_file_that_is_a_broken_link_is_reported_not_skipped(repo, target, problem):
    """It made the component vanish from validate's count and from every plan (found by a
    bad-input hunt): validate and build now both name it."""
    spec = repo.path / "components/train/component.yaml"
    spec.unlink()
    spec.symlink_to(target)
    assert only_problem(validate(repo)).startswith("components/train/component.yaml: ")
    result = repo.run("build", "--dry-run")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert f"components/train/component.yaml: {'cannot read: ' if 'levels' in problem else ''}" \
        f"{problem}" in result.err


def test_a_dockerfile_that_links_outside_the_repository_fails_validate_as_build(repo):
    """Found by a bad-input hunt: validate said ok where build refuses."""
    dockerfile = repo.path / "components/train/Dockerfile"
    dockerfile.unlink()
    dockerfile.symlink_to("/etc/passwd")
    line = only_problem(validate(repo))
    assert line.startswith("components/train/Dockerfile is a symlink to '/etc/passwd', "
                           "outside the repository"), line
    built = repo.run("build", "--dry-run")
    assert built.code == 1 and line in built.err


def test_every_bad_component_spec_is_reported_not_just_the_first(repo):
    edit(repo, "components/train/component.yaml", "version: 0.1.0", "version: one")
    edit(repo, "components/evaluate/component.yaml", "version: 0.1.0", "version: [0.1.0")
    result = validate(repo, "--json")
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    assert [(p["check"], p["message"].split(":")[0]) for p in doc["problems"]] == [
        ("components", "components/evaluate/component.yaml"),
        ("components", "components/train/component.yaml")], doc["problems"]
    assert {"check": "components", "count": 2} in doc["checks"]  # preprocess and serve
    human = validate(repo)
    assert human.code == 1 and human.out.splitlines()[-1] == "2 problems", human.out
    assert "components: 2 loaded" in human.out.splitlines()
    assert [line.split(":")[0] for line in human.out.splitlines()
            if line.startswith("components/")] == [
        "components/evaluate/component.yaml", "components/train/component.yaml"]


def test_an_overlay_that_does_not_render(repo):
    edit(repo, "environments/staging/kustomization.yaml", "  - ../base", "  - ../base\n  - gone.yaml")
    line = only_problem(validate(repo))
    assert line.startswith("environments/staging: kubectl kustomize environments/staging failed:")
    assert "gone.yaml" in line


def test_a_resource_that_breaks_its_crd_schema(repo):
    edit(repo, "environments/base/inferenceservice.yaml", "minReplicas: 1", "minReplicas: many",)
    result = validate(repo, "--env", "prod")
    assert only_problem(result) == (
        "environments/prod: InferenceService cancer: spec.predictor.minReplicas: "
        "'many' is not of type 'integer'")


def test_without_crds_schemas_are_not_checked(repo):
    edit(repo, "environments/base/inferenceservice.yaml", "minReplicas: 1", "minReplicas: many")
    result = repo.run("validate", "--env", "prod")
    assert result.code == 0, result.out
    assert "schemas: not checked (pass --crds DIR to check against CRDs)" in result.out


def test_a_mutable_tag_where_digests_are_required(repo):
    (repo.path / "environments/prod/kustomization.yaml").write_text(
        (repo.path / "environments/prod/kustomization.yaml").read_text()
        + "images:\n  - name: serve\n    newName: example.org/serve\n    newTag: latest\n")
    line = only_problem(validate(repo))
    assert line == (
        "environments/prod: InferenceService cancer: spec.predictor.containers[0].image is "
        "'example.org/serve:latest', a mutable reference; environment prod requires images "
        "pinned by digest (promote a build into it)")


def test_the_placeholder_image_counts_once_an_environment_is_promoted(repo):
    text = (repo.path / "environments/staging/kustomization.yaml").read_text()
    serve_pin = re.search(r"  - name: serve\n(?:    .*\n)+", text)
    edit(repo, "environments/staging/kustomization.yaml", serve_pin.group(0), "")
    result = validate(repo, "--env", "staging")
    assert result.code == 1
    assert "spec.predictor.containers[0].image is 'serve', a mutable reference" in result.out
    assert "release r-" in result.out and "pins serve but the kustomization has no" in result.out


def test_each_promotion_turned_on_automated_sync_for_its_environment_only(repo):
    """An overlay renders the base's `image: serve` until its first release; Argo CD
    would deploy that placeholder, so only released environments sync automatically."""
    text = (repo.path / argocd.APPLICATIONS_FILE).read_text()
    assert argocd.automated_sync(text) == {"mlops-dev": True, "mlops-staging": True,
                                           "mlops-prod": False}
    log = git(repo.path, "log", "--format=%s", "--", argocd.APPLICATIONS_FILE).splitlines()
    assert [s.split(":")[0] for s in log] == ["promote(staging)", "promote(dev)", "init"]


def test_an_unreleased_environment_that_syncs_automatically_is_refused(repo):
    path = repo.path / argocd.APPLICATIONS_FILE
    path.write_text(argocd.enable_automated_sync(path.read_text(), "mlops-prod"))
    problem = only_problem(validate(repo, "--env", "prod"))
    assert "spec.predictor.containers[0].image is the placeholder 'serve', which no cluster " \
        "can pull; Argo CD Application mlops-prod" in problem
    assert "syncs automatically although prod has no release yet" in problem


def test_release_yaml_that_disagrees_with_the_kustomization(repo):
    text = (repo.path / "environments/staging/kustomization.yaml").read_text()
    digest = re.search(r"name: serve\n.*\n\s+digest: (sha256:[0-9a-f]{64})", text).group(1)
    edit(repo, "environments/staging/kustomization.yaml", digest, "sha256:" + "1" * 64)
    line = only_problem(validate(repo))
    assert re.fullmatch(
        r"environments/staging/release.yaml: release r-[0-9a-f]{12} says serve is "
        r"\S+/serve@sha256:[0-9a-f]{12}\.\.\., the kustomization pins \S+/serve@sha256:1{12}\.\.\.",
        line), line


def test_a_stale_compiled_pipeline(repo):
    edit(repo, "environments/dev/pipelines/training.yaml", "defaultValue: 200.0",
         "defaultValue: 300.0", count=2)
    line = only_problem(validate(repo))
    assert re.fullmatch(
        r"environments/dev/pipelines/training.yaml: stale: a fresh compile of "
        r"pipelines/training.py at [0-9a-f]{12} gives the same version training-[0-9a-f]{10} "
        r"but different text; recompile with `mlops compile --env dev` or promote again", line)


def test_editing_a_pipeline_source_does_not_make_promoted_environments_stale(repo):
    edit(repo, "pipelines/training.py", "    max_iter: int = 200,\n) -> Outputs", "    max_iter: int = 250,\n) -> Outputs")
    repo.commit("a pipeline change, not promoted yet")
    assert validate(repo).code == 0


def test_problems_are_a_report_on_stdout_and_an_error_that_stops_it_is_one_stderr_line(repo):
    """As the README says: a linter's report (one line per problem, then `N problems`,
    exit 1) on stdout with nothing on stderr; no `mlops: error:` prefix. An error that
    stops validate from checking is the usual one line on stderr."""
    stopped = validate(repo, "--env", "qa")
    assert (stopped.code, stopped.out) == (2, "")
    assert stopped.err.startswith("mlops: error: ") and stopped.err.count("\n") == 1
    edit(repo, "components/train/component.yaml", "version: 0.1.0", "version: one")
    edit(repo, "mlops.yaml", "threshold: 0.9", "threshold: high")
    result = validate(repo)
    assert (result.code, result.err) == (1, ""), result.err
    lines = result.out.splitlines()
    assert lines[-1] == "2 problems"
    assert [line.split(":")[0] for line in lines if ":" in line and line.split(":")[1].isdigit()
            ] == ["mlops.yaml", "components/train/component.yaml"], result.out
    assert not any("mlops: error" in line for line in lines)


def test_an_unknown_environment_is_a_usage_error(repo):
    result = validate(repo, "--env", "qa")
    assert result.code == 2 and "unknown environment 'qa'" in result.err


def test_a_missing_crds_folder_is_a_usage_error(repo, tmp_path):
    result = repo.run("validate", "--crds", str(tmp_path / "nope"))
    assert result.code == 2
    assert result.err.strip() == f"mlops: error: --crds {tmp_path / 'nope'}: no such directory"


def test_in_github_actions_each_command_writes_a_job_summary(promoted):
    summary = (promoted.parent / "summary.md").read_text()
    build, dev, staging = summary.split("### ")[1:]
    assert build.startswith("✅ `mlops build`")
    build_json = json.loads((promoted.parent / "build.json").read_text())
    for b in build_json["builds"]:
        assert f"| {b['component']} | built | `{b['image']}` | `{b['digest']}` |" in build
    assert dev.startswith("✅ `mlops promote`") and "**environment:** `dev`" in dev
    release = re.search(r"\*\*release:\*\* `(r-[0-9a-f]{12})`", staging).group(1)
    assert release in (promoted / "environments/staging/release.yaml").read_text()
    assert "| accuracy-threshold | pass | accuracy " in staging
    assert "| evaluation metric | value |" in staging and "| roc_auc | 0.97 |" in staging


def test_in_github_actions_problems_are_annotations(repo, tmp_path):
    edit(repo, "components/train/component.yaml", "version: 0.1.0", "version: one")
    summary = tmp_path / "summary.md"
    result = repo.run("validate", env={"GITHUB_ACTIONS": "true",
                                       "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.code == 1
    assert re.search(r"^::error file=components/train::components/train/component.yaml%3A2",
                     result.err, re.M) is None  # a folder is no file to annotate
    assert re.search(r"^::error::components/train/component.yaml:2: ", result.err, re.M)
    assert summary.read_text().startswith("### ❌ `mlops validate`\n")
    assert "- components/train/component.yaml:2: " in summary.read_text()
