"""A promotion playground: a bare remote, a developer clone, images that exist in a registry.

Tiny components named like the reference ones (so the reference training
pipeline compiles against them) are built and pushed once per test session;
each test gets its own remote and clone.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import REPO_ROOT, git, tiny_component

COMPONENTS = ("preprocess", "train", "evaluate")

CONFIG = """\
registry: {registry}
build:
  build_args:
    BASE_IMAGE: mlops-base/python:3.11-bookworm
environments:
  - name: dev
  - name: staging
    gates:
      - metric: accuracy
        threshold: 0.9
      - metric: accuracy
        min_absolute_change: -0.02
  - name: prod
    soak: {soak}
    approval: true
    gates:
      - metric: roc_auc
        threshold: 0.9
approvals:
  release_managers: [alice@example.com]
"""


def kustomization(env: str) -> str:
    return (REPO_ROOT / "environments" / env / "kustomization.yaml").read_text()


def repo_files(registry: str, soak: str = "0s") -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {"mlops.yaml": CONFIG.format(registry=registry, soak=soak)}
    for name in COMPONENTS:
        files.update(tiny_component(name))
    files["pipelines/training.py"] = (REPO_ROOT / "pipelines/training.py").read_bytes()
    for env in ("dev", "staging", "prod"):
        files[f"environments/{env}/kustomization.yaml"] = kustomization(env)
    for path in (REPO_ROOT / "environments" / "base").iterdir():
        files[f"environments/base/{path.name}"] = path.read_bytes()
    return files


class Playground:
    """`remote` (bare) and `clone` (a developer's checkout that pushes to it)."""

    def __init__(self, base: Path, proj) -> None:
        self.base = base
        self.proj = proj
        self.clone = proj.path
        self.remote = base / "remote.git"
        git(base, "init", "-q", "--bare", "-b", "main", str(self.remote))
        proj.git("remote", "add", "origin", str(self.remote))
        proj.git("push", "-q", "origin", "main")
        proj.git("branch", "-q", "--set-upstream-to=origin/main")

    def remote_head(self) -> str:
        return git(self.remote, "rev-parse", "refs/heads/main")

    def remote_show(self, path: str, rev: str = "refs/heads/main") -> str:
        return git(self.remote, "show", f"{rev}:{path}")

    def remote_log(self, fmt: str = "%s") -> list[str]:
        return git(self.remote, "log", f"--format={fmt}", "refs/heads/main").splitlines()

    def pull(self) -> None:
        self.proj.git("pull", "-q", "--ff-only", "origin", "main")

    def metrics(self, name: str, values: Mapping[str, object]) -> Path:
        path = self.base / f"{name}.json"
        path.write_text(json.dumps(values) if not isinstance(values, str) else values)
        return path


def ssh_key(base: Path, name: str) -> tuple[Path, str]:
    """(private key path, public key line) made by ssh-keygen for this test."""
    key = base / f"{name}_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True)
    return key, (base / f"{name}_ed25519.pub").read_text().strip()


def push_approval(play: Playground, env: str, source: str, principal: str, key: Path) -> str:
    """The commit `mlops approve` makes for `source`'s release entering `env`, signed with
    `key` and pushed with plain git: what a pusher can put on the branch whether or not
    `mlops approve` (which checks an approval before pushing it) would have made it."""
    from mlops import release as rel
    from mlops.trailers import approval_message

    release = rel.parse(play.remote_show(f"environments/{source}/release.yaml"),
                        "release.yaml").release
    play.pull()
    git(play.clone, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q",
        "--allow-empty", "-S", "-m", approval_message(env, release.id, principal,
                                                      release.digest))
    git(play.clone, "push", "-q", "origin", "main")
    return play.remote_head()
