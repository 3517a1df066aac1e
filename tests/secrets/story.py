"""The story of tests/secrets/test_secrets.py: real parts, planted secrets, every command.

`told(root)` starts a registry with htpasswd auth, a git http-backend with basic
auth, and a Prometheus behind reverse proxies that demand a bearer token or a
password; makes a clone whose origin URL carries the git token; and runs the
commands, each in-process in "GitHub Actions" with every secret in its
environment. `Story.artifacts()` is everything those commands produced.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlops.adapters.gitops.workspace import TMP_PREFIX
from mlops.cli import main
from tests.conftest import Result, git
from tests.support.authproxy import AuthProxy
from tests.support.githttp import GitHttpServer
from tests.support.promotion import repo_files, ssh_key
from tests.support.secretgrep import Secret, files_under
from tests.support.services import PrometheusServer, RegistryServer, free_port, require

GIT_USER, REGISTRY_USER, PROM_USER = "x-access-token", "ci-bot", "prom-reader"
CANARY, BASELINE = "cancer-predictor-00002", "cancer-predictor-00001"
GOOD_METRICS = {"accuracy": 0.95, "f1": 0.94, "roc_auc": 0.97}

# scratch: the images hold only the sources, so pushing them to a fresh registry
# takes a moment, not the base image's layers; nothing here runs them.
CONFIG = """\
registry: {registry}
build:
  build_args:
    BASE_IMAGE: scratch
environments:
  - name: dev
  - name: staging
    gates:
      - metric: accuracy
        threshold: 0.9
  - name: prod
    approval: true
    canary:
      steps: [10, 50]
      analysis:
        metrics:
          - name: scraped
            query: '1 - min(up{{revision="{{{{ revision }}}}"}})'
            max: 0.01
            no_data: fail
            interval: 1s
            count: 1
approvals:
  release_managers: [alice@example.com]
"""


@dataclass(frozen=True)
class Planted:
    registry_password: Secret
    wrong_registry_password: Secret
    git_token: Secret
    wrong_git_token: Secret
    prometheus_token: Secret
    wrong_prometheus_token: Secret
    prometheus_password: Secret


def plant() -> Planted:
    # Characters that URL and base64 encodings change, where the channel allows them.
    return Planted(
        registry_password=Secret.make("registry password", "reg-", "+/="),
        wrong_registry_password=Secret.make("wrong registry password", "badreg-", "+/="),
        git_token=Secret.make("git token", "ghs_"),
        wrong_git_token=Secret.make("wrong git token", "ghs_bad"),
        prometheus_token=Secret.make("Prometheus bearer token", "prom-"),
        wrong_prometheus_token=Secret.make("wrong Prometheus bearer token", "badprom-"),
        prometheus_password=Secret.make("Prometheus URL password", "pw-", "/+="),
    )


@dataclass
class Story:
    """What the commands printed and where the parts live."""

    root: Path
    secrets: Planted
    clone: Path
    remote: Path
    summary: Path
    results: dict[str, Result] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # records mlops wrote
    seen: dict[str, object] = field(default_factory=dict)  # what the servers saw
    # Temporary clones that were there before: any other left behind is scanned
    # (its .git/config would hold the remote URL).
    workspaces: set[Path] = field(default_factory=lambda: set(_workspaces()))

    def artifacts(self) -> dict[str, str | bytes]:
        """Everything mlops produced, by name."""
        found: dict[str, str | bytes] = {}
        for name, result in self.results.items():
            found[f"{name}: stdout"] = result.out
            found[f"{name}: stderr"] = result.err
        for name, path in self.files.items():
            found[name] = path.read_bytes()
        found["GITHUB_STEP_SUMMARY"] = self.summary.read_bytes()
        found["remote: every object"] = subprocess.run(
            ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=self.remote,
            capture_output=True, check=True).stdout
        found["remote: refs"] = git(self.remote, "for-each-ref")
        found.update(files_under(self.clone / ".git", "clone/.git",
                                 skip=[self.clone / ".git" / "config"]))
        found.update({k: v for k, v in files_under(self.clone, "clone").items()
                      if not k.startswith("clone/.git/")})
        for left in set(_workspaces()) - self.workspaces:
            with contextlib.suppress(OSError):  # another process's, going away
                found.update(files_under(left, f"left behind: {left}"))
        return found


def _workspaces() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"))


def run(story: Story, name: str, *args: str, env: Mapping[str, str | None] = (),
        ) -> Result:
    """`mlops ARGS --repo <clone>` in-process, as Project.run does, in GitHub Actions.

    Output is caught at sys.stdout/stderr and at file descriptors 1 and 2, so
    a child process writing to the terminal is caught as well."""
    base = {"DOCKER_CONFIG": str(story.root / "docker-good"),
            "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(story.summary),
            "MLOPS_PROMETHEUS_TOKEN": story.secrets.prometheus_token.value,
            "MLOPS_GIT_RETRIES": "2", "MLOPS_REGISTRY_RETRIES": "2",
            "GIT_AUTHOR_NAME": "Test Dev", "GIT_AUTHOR_EMAIL": "dev@example.test",
            "GIT_COMMITTER_NAME": "Test Dev", "GIT_COMMITTER_EMAIL": "dev@example.test"}
    with pytest.MonkeyPatch.context() as m:
        for key, value in {**base, **dict(env)}.items():
            if value is None:
                m.delenv(key, raising=False)
            else:
                m.setenv(key, value)
        out, err = io.StringIO(), io.StringIO()
        with _fd_capture() as raw, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            code = main([*args, "--repo", str(story.clone)])
    result = Result(code, out.getvalue() + raw["stdout"], err.getvalue() + raw["stderr"])
    story.results[name] = result
    return result


@contextlib.contextmanager
def _fd_capture() -> Iterator[dict[str, str]]:
    caught: dict[str, str] = {}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            for key, fh in (("stdout", out), ("stderr", err)):
                fh.seek(0)
                caught[key] = fh.read().decode("utf-8", "replace")


def docker_config(path: Path, host: str, password: str) -> None:
    path.mkdir()
    auth = base64.b64encode(f"{REGISTRY_USER}:{password}".encode()).decode()
    (path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def prometheus_scraping_itself(workdir: Path) -> PrometheusServer:
    """A Prometheus whose only target is itself, labelled as the canary revision."""
    prom = PrometheusServer(workdir, labels={"revision": CANARY})
    prom.targets = [f"127.0.0.1:{prom.port}"]
    return prom


def wait_scraped(prom: PrometheusServer, timeout: float = 20) -> None:
    query = urllib.parse.urlencode({"query": f'up{{revision="{CANARY}"}} == 1'})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # 503 until Prometheus is ready
            with urllib.request.urlopen(f"{prom.url}/api/v1/query?{query}", timeout=5) as resp:
                if json.load(resp)["data"]["result"]:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError("Prometheus never scraped itself")


@contextlib.contextmanager
def told(root: Path) -> Iterator[Story]:
    """Start the parts under `root`, tell the whole story, stop the parts after."""
    require(shutil.which("docker-registry") is not None, "docker-registry not installed")
    secrets = plant()
    (root / "registry").mkdir()
    registry = RegistryServer(root / "registry",
                              htpasswd=(REGISTRY_USER, secrets.registry_password.value))
    (root / "prom").mkdir()
    with contextlib.ExitStack() as stack:
        stack.callback(registry.start().stop)
        prom = prometheus_scraping_itself(root / "prom")
        stack.callback(prom.stop)
        prom.start()
        wait_scraped(prom)
        bearer = stack.enter_context(AuthProxy(
            prom.url, {f"Bearer {secrets.prometheus_token.value}"}))
        basic = base64.b64encode(
            f"{PROM_USER}:{secrets.prometheus_password.value}".encode()).decode()
        basic_proxy = stack.enter_context(AuthProxy(prom.url, {f"Basic {basic}"}))
        served = root / "served"
        served.mkdir()
        git(root, "init", "-q", "--bare", "-b", "main", str(served / "remote.git"))
        server = stack.enter_context(
            GitHttpServer(served, auth=(GIT_USER, secrets.git_token.value)))
        s = Story(root, secrets, root / "clone", served / "remote.git", root / "summary.md")
        s.summary.touch()
        docker_config(root / "docker-good", registry.host, secrets.registry_password.value)
        docker_config(root / "docker-bad", registry.host, secrets.wrong_registry_password.value)
        _make_clone(s, registry.host, server)
        _tell(s, registry, server, bearer, basic_proxy)
        yield s


def _make_clone(s: Story, host: str, server: GitHttpServer) -> None:
    s.clone.mkdir()
    git(s.clone, "init", "-q", "-b", "main")
    _, alice_pub = ssh_key(s.root, "alice")
    files = {**repo_files(f"{host}/secret"), "mlops.yaml": CONFIG.format(registry=f"{host}/secret"),
             ".mlops/allowed_signers": f"alice@example.com {alice_pub}\n"}
    for rel, content in files.items():
        path = s.clone / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(s.clone, "config", "user.name", "Test Dev")
    git(s.clone, "config", "user.email", "dev@example.test")
    git(s.clone, "add", "-A")
    git(s.clone, "commit", "-qm", "initial")
    git(s.clone, "remote", "add", "origin", server.url("remote.git", auth=True))
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    subprocess.run(["git", "push", "-q", "-u", "origin", "main"], cwd=s.clone, env=env,
                   check=True, capture_output=True)


def _tell(s: Story, registry: RegistryServer, server: GitHttpServer, bearer: AuthProxy,
          basic_proxy: AuthProxy) -> None:
    """The whole story; results and files are kept in `s` for the tests to judge."""
    sec = s.secrets
    build_json = s.root / "build.json"
    s.files["build.json"] = build_json
    run(s, "build", "build", "-v", "--json", "--output", str(build_json))
    run(s, "build again (human)", "build", "-v")
    run(s, "build, wrong registry password", "build", "-v", "--json", "--force",
        env={"DOCKER_CONFIG": str(s.root / "docker-bad")})
    run(s, "promote dev, wrong registry password", "promote", "--to", "dev", "--build",
        str(build_json), "-v", "--json", env={"DOCKER_CONFIG": str(s.root / "docker-bad")})
    pushes = len(server.pushes())
    run(s, "promote dev", "promote", "--to", "dev", "--build", str(build_json),
        "--model-uri", "pvc://models/cancer-v1", "-v", "--json")
    run(s, "promote dev again", "promote", "--to", "dev", "--build", str(build_json),
        "--model-uri", "pvc://models/cancer-v2", "-v")
    metrics = s.root / "metrics.json"
    metrics.write_text(json.dumps(GOOD_METRICS))
    run(s, "promote staging", "promote", "--to", "staging", "--from", "dev",
        "--metrics", str(metrics), "-v", "--json")
    first = _json(s.results["promote staging"]).get("release", "r-000000000000")
    run(s, "approve the first release", "approve", "--env", "prod", "--release", str(first),
        "--key", str(s.root / "alice_ed25519"), "--principal", "alice@example.com", "-v")
    run(s, "rollout start, first release", "rollout", "start", "--env", "prod", "-v",
        "--json")  # no baseline yet: straight to 100%
    run(s, "promote dev, third", "promote", "--to", "dev", "--build", str(build_json),
        "--model-uri", "pvc://models/cancer-v3", "-v")
    run(s, "promote staging again", "promote", "--to", "staging", "--from", "dev",
        "--metrics", str(metrics), "-v")
    run(s, "rollout start", "rollout", "start", "--env", "prod", "-v", "--json")
    analyze = ("rollout", "analyze", "--env", "prod", "--revision", CANARY,
               "--baseline-revision", BASELINE, "-v")
    record = s.root / "record.json"
    s.files["record.json"] = record
    _misconfigured_prometheus(s)  # each failed analysis replaces the kept record
    refused = bearer.seen_refused
    run(s, "rollout analyze, wrong bearer token", *analyze, "--json",
        env={"MLOPS_PROMETHEUS_URL": bearer.url(),
             "MLOPS_PROMETHEUS_TOKEN": sec.wrong_prometheus_token.value})
    s.seen["bearer refused"] = bearer.seen_refused - refused
    run(s, "rollout analyze, password in the Prometheus URL", *analyze,
        env={"MLOPS_PROMETHEUS_URL": basic_proxy.url(
            f"{PROM_USER}:{urllib.parse.quote(sec.prometheus_password.value, safe='')}"),
            "MLOPS_PROMETHEUS_TOKEN": None})
    s.seen["basic accepted"] = basic_proxy.seen_authorized
    run(s, "rollout analyze", *analyze, "--json", "--output", str(record),
        env={"MLOPS_PROMETHEUS_URL": bearer.url()})
    s.seen["bearer accepted"] = bearer.seen_authorized
    run(s, "rollout promote", "rollout", "promote", "--env", "prod", "-v", "--json")
    release = _json(s.results["rollout promote"]).get("release", "r-000000000000")
    run(s, "approve", "approve", "--env", "prod", "--release", str(release),
        "--key", str(s.root / "alice_ed25519"), "--principal", "alice@example.com",
        "-v", "--json")
    run(s, "history", "history", "-v", "--json")
    run(s, "history (human)", "history", "--env", "prod", "-v")
    run(s, "rollback dev", "rollback", "--env", "dev", "-v", "--json")
    s.seen["authenticated pushes"] = len(server.pushes()) - pushes
    s.seen["push users"] = {p.user for p in server.pushes()}

    run(s, "build, credentials in $MLOPS_REGISTRY", "build", "-v", "--json",
        env={"MLOPS_REGISTRY": f"https://{REGISTRY_USER}:"
                               f"{urllib.parse.quote(sec.registry_password.value, safe='')}"
                               f"@{registry.host}/secret"})
    right = server.url("remote.git", auth=True)
    wrong = f"http://{GIT_USER}:{sec.wrong_git_token.value}@127.0.0.1:{server.port}/remote.git"
    git(s.clone, "remote", "set-url", "origin", wrong)
    try:
        run(s, "history, wrong git token", "history", "-v", "--json")
        run(s, "promote staging, wrong git token", "promote", "--to", "staging", "--from",
            "dev", "-v")
        # A URL missing its scheme: git reads it as ssh's host:path (and never gets to ssh).
        git(s.clone, "remote", "set-url", "origin",
            f"oauth2:{sec.git_token.value}@127.0.0.1:{server.port}/remote.git")
        run(s, "history, git URL without a scheme", "history", "-v", "--json",
            env={"GIT_SSH_COMMAND": "false"})
    finally:
        git(s.clone, "remote", "set-url", "origin", right)
    server.stop()
    run(s, "history, git server down", "history", "-v", "--json")
    run(s, "rollout promote, git server down", "rollout", "promote", "--env", "prod", "-v")
    run(s, "rollback dev, git server down", "rollback", "--env", "dev", "-v", "--json")


def _misconfigured_prometheus(s: Story) -> None:
    """A password in a Prometheus URL that mlops refuses, or cannot reach."""
    userinfo = f"{PROM_USER}:{urllib.parse.quote(s.secrets.prometheus_password.value, safe='')}"
    analyze = ("rollout", "analyze", "--env", "prod", "--revision", CANARY,
               "--baseline-revision", BASELINE, "-v", "--json")
    for name, url in (("no scheme", f"{userinfo}@127.0.0.1:9090"),
                      ("a misspelt scheme", f"htp://{userinfo}@127.0.0.1:9090"),
                      ("a space", f"http://{userinfo}@127.0.0.1:9090/ x")):
        run(s, f"rollout analyze, Prometheus URL with {name}", *analyze,
            env={"MLOPS_PROMETHEUS_URL": url})
    run(s, "rollout analyze, Prometheus down", *analyze,
        env={"MLOPS_PROMETHEUS_URL": f"http://{userinfo}@127.0.0.1:{free_port()}",
             "MLOPS_PROMETHEUS_RETRIES": "1"})


def _json(result: Result) -> dict:
    try:
        return dict(json.loads(result.out))
    except ValueError:
        return {}
