"""Fixtures: real git repos in tmp_path, a real registry, the real Docker Engine.

`project({...})` makes a git repository from a dict of files and runs the CLI
in-process against it, like tox 4's project fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

# The canary fixtures are a plugin of two test modules; rewriting their asserts
# must be registered before any module imports them.
pytest.register_assert_rewrite("tests.support.canary")

from mlops.cli import main  # noqa: E402
from tests.support.services import (  # noqa: E402
    BASE_IMAGE,
    RegistryServer,
    base_image_present,
    docker_problem,
    require,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def write_files(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write {relative path: text or bytes} under `root`, making folders as needed."""
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


class Project:
    def __init__(self, path: Path, capsys, monkeypatch) -> None:
        self.path = path
        self._capsys = capsys
        self._monkeypatch = monkeypatch

    def write(self, files: Mapping[str, str | bytes]) -> None:
        write_files(self.path, files)

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """Run `mlops ARGS --repo <project>` in-process and capture its output."""
        self._capsys.readouterr()
        with self._monkeypatch.context() as m:
            for key, value in (env or {}).items():
                m.setenv(key, value)
            code = main([*args, "--repo", str(self.path)])
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def status(self) -> str:
        return self.git("status", "--porcelain")


@pytest.fixture
def project(tmp_path, capsys, monkeypatch) -> Callable[..., Project]:
    monkeypatch.delenv("MLOPS_REGISTRY", raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Dev")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "dev@example.test")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Dev")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "dev@example.test")

    def make(files: Mapping[str, str | bytes], commit: bool = True, name: str = "repo"):
        path = tmp_path / name
        path.mkdir()
        git(path, "init", "-q", "-b", "main")
        proj = Project(path, capsys, monkeypatch)
        proj.write(files)
        if commit:
            proj.commit("initial")
        return proj

    return make


@pytest.fixture(scope="session", autouse=True)
def _no_stale_registry_tags():
    """Before and after the session: the local tags of test registries that are gone
    (tests/support/staletags.py says why they cost minutes)."""
    from tests.support.staletags import SessionLock, forget_stale_tags

    components = Path(__file__).resolve().parents[1] / "components"
    lock = SessionLock()
    try:
        if lock.alone() and docker_problem() is None:
            forget_stale_tags(components)
        lock.share()
        yield
        if lock.alone() and docker_problem() is None:
            forget_stale_tags(components)
    finally:
        lock.close()


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = docker_problem()
    require(problem is None, problem or "")
    require(base_image_present(), f"base image {BASE_IMAGE} missing: run hack/base-image.sh")


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory):
    require(shutil.which("docker-registry") is not None, "docker-registry not installed")
    server = RegistryServer(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


@pytest.fixture
def registry(registry_server) -> tuple[RegistryServer, str]:
    """The registry and a namespace of this test's own: `host:port/t<random>`."""
    return registry_server, f"{registry_server.host}/t{uuid.uuid4().hex[:10]}"


# A base for tests about pushing, not about what runs in the image: `FROM scratch` has no
# layer of its own, so a push to a registry endpoint the engine has not pushed to before
# (a fault proxy's or a registry's own port) uploads kilobytes, where the 169 MB base
# image would be compressed again, for several seconds each time on 2 cores.
NO_BASE = "scratch"


def mlops_yaml(registry: str, extra: str = "", base: str = BASE_IMAGE) -> str:
    return (
        f"registry: {registry}\n"
        "build:\n"
        "  build_args:\n"
        f"    BASE_IMAGE: {base}\n"
        "environments:\n"
        "  - name: dev\n"
        "  - name: staging\n"
        "  - name: prod\n"
        f"{extra}"
    )


def tiny_component(name: str, version: str = "0.1.0", test: str | None = None,
                   extra: str = "", copy: str = "src/ /app/") -> dict[str, str]:
    """A fast component on the local base image: no pip, one COPY."""
    spec = f"name: {name}\nversion: {version}\n{extra}"
    if test is not None:
        spec += f"test: {test}\n"
    return {
        f"components/{name}/component.yaml": spec,
        f"components/{name}/Dockerfile": (
            "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nWORKDIR /app\n"
            f"COPY {copy}\n"
        ),
        f"components/{name}/src/main.py": f"print('{name}')\n",
    }


def reference_files() -> dict[str, bytes]:
    """The repository's own components, for tests that build the real thing."""
    files: dict[str, bytes] = {}
    for rel in git(REPO_ROOT, "ls-files", "-co", "--exclude-standard", "components").splitlines():
        path = REPO_ROOT / rel
        if path.is_file():
            files[rel] = path.read_bytes()
    return files


def pytest_configure(config) -> None:
    """Under pytest-xdist (`make test` runs two workers), each worker gets a temp dir of
    its own: a test that checks an mlops command left no temp dir behind
    (tests/support/untouched.py) must not see the other worker's commands at work."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        own = Path(tempfile.mkdtemp(prefix=f"pytest-{worker}-"))
        os.environ["TMPDIR"] = str(own)  # for the mlops processes tests start, too
        tempfile.tempdir = None  # asked again, now from $TMPDIR
        config.add_cleanup(lambda: shutil.rmtree(own, ignore_errors=True))


def pytest_collection_modifyitems(config, items) -> None:
    """Alone, run tests marked `slow` last (in their collected order), the demo last of
    all: the quick ones report first. Under pytest-xdist, the other way round: the demo
    (minutes of canary windows) starts at once and overlaps the rest, rather than
    running alone at the end while the other worker has nothing left to do."""
    first_slow = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    items.sort(key=lambda item: ((item.get_closest_marker("slow") is not None) != first_slow,
                                 (item.path.name == "test_demo.py") != first_slow))


@pytest.fixture(autouse=True)
def _not_in_github_actions(monkeypatch) -> None:
    """Tests run inside GitHub Actions (or GitLab CI) too; only the tests that ask for it
    see its variables."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITLAB_CI", raising=False)
    monkeypatch.delenv("MLOPS_TRUST_ROOT", raising=False)  # a pinned root the test did not ask for
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # a developer's own MLflow


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (SQLite backend) from hack/setup.sh's virtualenv."""
    from tests.support.mlflowserver import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    yield server
    server.stop()
