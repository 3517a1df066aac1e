"""Worlds for the bad-input corpus: real repositories, remotes and registry, broken per case.

- `bare`: the promotion playground's files in a clone of a bare remote,
  nothing promoted; its registry namespace stays empty. Most cases break this.
- `staged`: a copy of a session template made by real commands on the images
  `built` pushed once: dev and staging promoted, a release manager's signed
  approval of an older release for prod, and a newer release now in staging.
- `canary`: a copy of `staged` whose prod rolls out as a canary, at its last
  step (50%), so the next `rollout promote` needs an analysis and an approval.

Copying a template costs milliseconds; promoting costs seconds, so each
template is made once per session and each case breaks its own copy.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.cli import main
from tests.commands.conftest import GOOD, built  # noqa: F401 - the session's pushed images
from tests.conftest import git
from tests.support.kubestub import KubeStub
from tests.support.promotion import repo_files, ssh_key
from tests.support.services import RegistryServer

IDENTITY = {"GIT_AUTHOR_NAME": "Test Dev", "GIT_AUTHOR_EMAIL": "dev@example.test",
            "GIT_COMMITTER_NAME": "Test Dev", "GIT_COMMITTER_EMAIL": "dev@example.test"}
KEYS = ("alice", "bob", "mallory")  # alice manages releases, bob only signs, mallory neither
MODEL_V2 = "pvc://models/cancer-v2"
MODEL_V3 = "pvc://models/cancer-v3"
CANARY = """\
    canary:
      steps: [10, 50]
      analysis:
        metrics:
          - name: error-rate
            query: sum(rate(errors{revision="{{ revision }}"}[{{ interval }}]))
            max: 0.01
"""


@dataclass
class World:
    """A clone of `remote` to break, the registry, and `base` for inputs outside the repo."""

    clone: Path
    remote: Path
    base: Path
    server: RegistryServer
    ns: str
    monkeypatch: pytest.MonkeyPatch
    keys: dict[str, Path] = field(default_factory=dict)
    finalizers: list[Callable[[], None]] = field(default_factory=list)

    def git(self, *args: str) -> str:
        return git(self.clone, *args)

    def commit(self, files: Mapping[str, str | bytes | None], message: str = "edit") -> None:
        """Write (or, for None, delete) files in the clone and commit them, without pushing."""
        for rel, content in files.items():
            path = self.clone / rel
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)

    def push(self, files: Mapping[str, str | bytes | None], message: str = "edit") -> None:
        self.commit(files, message)
        self.git("push", "-q", "origin", "HEAD:refs/heads/main")

    def edit(self, rel: str, old: str, new: str, push: bool = True) -> None:
        text = (self.clone / rel).read_text()
        assert old in text, f"{old!r} not in {rel}"
        (self.commit if not push else self.push)({rel: text.replace(old, new)}, f"edit {rel}")

    def text(self, rel: str) -> str:
        return (self.clone / rel).read_text()

    def input(self, name: str, content: str | bytes) -> Path:
        """A file outside the repository, e.g. a metrics file or a build record."""
        path = self.base / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def kube(self) -> KubeStub:
        """A stub Kubernetes API server for this case (the one allowed fake), stopped after it."""
        stub = KubeStub().start()
        self.finalizers.append(stub.stop)
        return stub

    def ids(self) -> dict[str, str]:
        """The release id in each environment that has one, as the clone sees it."""
        found = {}
        for path in sorted((self.clone / "environments").glob("*/release.yaml")):
            try:
                found[path.parent.name] = str(yaml.safe_load(path.read_text())["id"])
            except Exception:  # noqa: BLE001 - a case may have broken it on purpose
                continue
        return found


def _new_repo(base: Path, files: Mapping[str, str | bytes]) -> tuple[Path, Path]:
    """(clone, bare remote): the files committed and pushed to main."""
    remote, clone = base / "remote.git", base / "clone"
    # --template= : no sample hooks, fewer files for every case to copy
    git(base, "init", "-q", "--template=", "--bare", "-b", "main", str(remote))
    clone.mkdir()
    git(clone, "init", "-q", "--template=", "-b", "main")
    for rel, content in files.items():
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        (clone / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "initial")
    git(clone, "remote", "add", "origin", str(remote))
    git(clone, "push", "-q", "-u", "origin", "main")
    return clone, remote


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path) -> None:
    """Our identity, no overrides from the caller's environment, and a temp dir of our own.

    mlops makes its workspaces under the temp dir, and the snapshot counts what
    a command leaves there; other test runs on the machine share /tmp."""
    monkeypatch.delenv("MLOPS_REGISTRY", raising=False)
    monkeypatch.delenv("MLOPS_PROMETHEUS_URL", raising=False)
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))  # for child processes
    monkeypatch.setattr(tempfile, "tempdir", str(private))


def _finalized(world: World) -> Iterator[World]:
    yield world
    for stop in world.finalizers:
        stop()


@pytest.fixture(scope="session")
def bare_template(tmp_path_factory, registry_server) -> tuple[Path, str]:
    """The playground's files, committed and pushed; its registry namespace stays empty."""
    base = tmp_path_factory.mktemp("bare") / "t"
    base.mkdir()
    ns = f"{registry_server.host}/bad{uuid.uuid4().hex[:8]}"
    _new_repo(base, repo_files(ns))
    return base, ns


@pytest.fixture
def bare(bare_template, tmp_path, registry_server, monkeypatch) -> Iterator[World]:
    template, ns = bare_template
    yield from _finalized(_copy(template, tmp_path, registry_server, ns, monkeypatch))


# -- templates made once per session by real commands --------------------------


def mlops(clone: Path, *args: str) -> str:
    """Run a setup command in-process (kfp is imported once per session); its stdout."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as m, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        for key, value in IDENTITY.items():
            m.setenv(key, value)
        m.delenv("MLOPS_REGISTRY", raising=False)
        code = main([*args, "--repo", str(clone)])
    assert code == 0, f"setup `mlops {' '.join(args)}` failed: {err.getvalue()}"
    return out.getvalue()


def release_id(clone: Path, env: str) -> str:
    text = git(clone, "show", f"origin/main:environments/{env}/release.yaml")
    return str(yaml.safe_load(text)["id"])


@pytest.fixture(scope="session")
def staged_template(tmp_path_factory, built):  # noqa: F811 - the imported fixture
    ns, build = built
    base = tmp_path_factory.mktemp("staged")
    keys = {name: ssh_key(base, name)[0] for name in KEYS}
    signers = "".join(f"{n}@example.com {(base / f'{n}_ed25519.pub').read_text()}"
                      for n in ("alice", "bob"))
    clone, _ = _new_repo(base, {**repo_files(ns), ".mlops/allowed_signers": signers})
    good = base / "good.json"
    good.write_text(json.dumps(GOOD))
    mlops(clone, "promote", "--to", "dev", "--build", str(build))
    mlops(clone, "promote", "--to", "staging", "--from", "dev", "--metrics", str(good))
    git(clone, "fetch", "-q", "origin")
    mlops(clone, "approve", "--env", "prod", "--release", release_id(clone, "staging"),
          "--key", str(keys["alice"]), "--principal", "alice@example.com")
    mlops(clone, "promote", "--to", "dev", "--build", str(build), "--model-uri", MODEL_V2)
    mlops(clone, "promote", "--to", "staging", "--from", "dev", "--metrics", str(good))
    git(clone, "pull", "-q", "--ff-only", "origin", "main")
    return base


@pytest.fixture(scope="session")
def canary_template(tmp_path_factory, staged_template, built):  # noqa: F811
    """prod rolls out as a canary: staging's release went in first (at 100%, approved:
    there was no baseline), and a newer one is its canary, at step 2 (50%)."""
    base = tmp_path_factory.mktemp("canary") / "t"
    shutil.copytree(staged_template, base, symlinks=True)
    clone = base / "clone"
    git(clone, "remote", "set-url", "origin", str(base / "remote.git"))
    config = (clone / "mlops.yaml").read_text()
    (clone / "mlops.yaml").write_text(config.replace("    approval: true\n",
                                                     "    approval: true\n" + CANARY))
    git(clone, "commit", "-qam", "prod rolls out as a canary")
    git(clone, "push", "-q", "origin", "main")
    mlops(clone, "approve", "--env", "prod", "--release", release_id(clone, "staging"),
          "--key", str(base / "alice_ed25519"), "--principal", "alice@example.com")
    mlops(clone, "rollout", "start", "--env", "prod")  # the first release: 100% at once
    mlops(clone, "promote", "--to", "dev", "--build", str(built[1]), "--model-uri", MODEL_V3)
    mlops(clone, "promote", "--to", "staging", "--from", "dev", "--metrics",
          str(base / "good.json"))
    mlops(clone, "rollout", "start", "--env", "prod")  # the canary, against the first
    git(clone, "pull", "-q", "--ff-only", "origin", "main")
    first = decision(clone, step=1, percent=10, path=base / "step1.json")
    mlops(clone, "rollout", "promote", "--env", "prod", "--analysis", str(first))
    git(clone, "pull", "-q", "--ff-only", "origin", "main")
    return base


def decision(clone: Path, step: int = 2, percent: int = 50, path: Path | None = None,
             **changes: Any) -> Path:
    """A decision record as `rollout analyze --output` writes it, for prod's canary now."""
    record = yaml.safe_load((clone / "environments/prod/release.yaml").read_text())
    doc: dict[str, Any] = {
        "env": "prod", "release": record["id"], "step": step, "percent": percent,
        "result": "pass", "reasons": ["error-rate: 3/3 measurements passed"],
        "revision": "cancer-predictor-00002", "baseline_revision": "cancer-predictor-00001",
        "finished_at": time.time(), "finished": "2026-01-05T10:00:00Z",
        "measurements": [{"metric": "error-rate", "index": 1, "verdict": "pass", "value": 0.0,
                          "query": 'sum(rate(errors{revision="c-2"}[60s]))'}]}
    doc.update(changes)
    path = path or clone.parent / "decision.json"
    path.write_text(json.dumps(doc))
    return path


def _copy(template: Path, tmp_path: Path, registry_server, ns: str, monkeypatch) -> World:
    base = tmp_path / "world"
    shutil.copytree(template, base, symlinks=True)
    clone, remote = base / "clone", base / "remote.git"
    git(clone, "remote", "set-url", "origin", str(remote))
    keys = {name: base / f"{name}_ed25519" for name in KEYS}
    return World(clone, remote, base, registry_server, ns, monkeypatch, keys)


@pytest.fixture
def staged(staged_template, tmp_path, registry_server, built, monkeypatch):  # noqa: F811
    yield from _finalized(_copy(staged_template, tmp_path, registry_server, built[0],
                                monkeypatch))


@pytest.fixture
def canary(canary_template, tmp_path, registry_server, built, monkeypatch):  # noqa: F811
    yield from _finalized(_copy(canary_template, tmp_path, registry_server, built[0],
                                monkeypatch))


@pytest.fixture
def world(request) -> World:
    """The world a case names (`staged`, `canary` or `bare`), made on demand."""
    return request.getfixturevalue(request.getfixturevalue("case").world)

