"""pre-commit: the hook manifest and this repository's config load, name
installed tools and real `mlops` subcommands, and the hook runs from a repository.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_files
from tests.support.services import require
from tests.support.workflowcheck import check_invocation, tool

REPO = Path(__file__).resolve().parents[1]


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
    """pre-commit builds mlops into its own environment (PyPI only) from a repository and
    rev, as a consumer's .pre-commit-config.yaml names them, and runs the hook twice.

    `pre-commit run --config` rather than `try-repo`: try-repo writes the same config but
    installs into a store of its own each time (a temporary directory), so the second run
    would build the environment again; here both share PRE_COMMIT_HOME, as a user's do.
    """
    require(tool("kubectl") is not None, "kubectl not installed")
    hook_repo = snapshot(REPO, tmp_path / "hook-repo")
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True,
                         text=True, check=True).stdout.strip()
    config = tmp_path / "pre-commit-config.yaml"  # outside the target: its tree stays clean
    config.write_text(yaml.safe_dump({"repos": [{"repo": str(hook_repo), "rev": rev,
                                                 "hooks": [{"id": "mlops-validate"}]}]}))
    target = tmp_path / "target"
    files = {"mlops.yaml": "registry: 127.0.0.1:5000/x\nenvironments:\n  - name: dev\n",
             "environments/dev/kustomization.yaml":
                 "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                 "resources: [configmap.yaml]\n",
             "environments/dev/configmap.yaml":
                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}
    commit_files(target, files)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    run_hook = [str(tool("pre-commit")), "run", "--config", str(config), "mlops-validate",
                "--all-files"]
    ok = subprocess.run(run_hook, cwd=target, env=env, capture_output=True, text=True,
                        timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Installing environment for " in ok.stdout, ok.stdout  # built here, from the repo
    commit_files(target, {"mlops.yaml": "registry: 127.0.0.1:5000/x\nenvironmentz: []\n"})
    bad = subprocess.run(run_hook, cwd=target, env=env, capture_output=True, text=True,
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
    write_files(path, files)
    if not (path / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.test", "commit",
                    "-q", "-m", "files"], cwd=path, check=True)
    return path
