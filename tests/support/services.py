"""Real services for tests: an OCI registry process and checks for the Docker Engine.

Tests start what they need on free loopback ports and stop it afterwards.
When a service is missing, the test fails under MLOPS_TEST_REQUIRE_SERVICES=1
(CI) and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml

BASE_IMAGE = os.environ.get("MLOPS_BASE_IMAGE", "mlops-base/python:3.11-bookworm")
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def require(condition: bool, why: str) -> None:
    """Skip, or fail when CI says every service must be there."""
    if condition:
        return
    if os.environ.get("MLOPS_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {why}", pytrace=False)
    pytest.skip(why)


_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A loopback port free now and never returned before in this process.

    Callers bind it later (a container may take tens of seconds), so two picks
    made before either binds must not coincide: the kernel may offer a released
    port again, hence the set of ports already handed out."""
    with _HANDED_OUT_LOCK:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def wait_for_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def docker_problem() -> str | None:
    if not shutil.which("docker"):
        return "docker CLI not installed"
    proc = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0:
        return f"Docker Engine not reachable: {proc.stderr.strip()[:200]}"
    return None


def base_image_present() -> bool:
    proc = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    return proc.returncode == 0


def stop_process(proc: subprocess.Popen | None) -> None:
    """Terminate a service we started; kill it if it does not go within 10 s."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class RegistryServer:
    """CNCF Distribution (`docker-registry serve`) on 127.0.0.1:<free port>."""

    def __init__(self, workdir: Path, htpasswd: tuple[str, str] | None = None,
                 readonly: bool = False) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.htpasswd = htpasswd
        self.readonly = readonly

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RegistryServer:
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.workdir / 'data'}\n"
            "  delete:\n    enabled: true\n"
            + ("  maintenance:\n    readonly:\n      enabled: true\n" if self.readonly else "")
            + f"http:\n  addr: 127.0.0.1:{self.port}\n"
            + self._auth_config()
        )
        log = open(self.workdir / "registry.log", "wb")  # noqa: SIM115 - kept open for the process
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        if not wait_for_port(self.port):
            self.stop()
            raise RuntimeError("docker-registry did not start")
        return self

    def _auth_config(self) -> str:
        if not self.htpasswd:
            return ""
        import crypt  # bcrypt via libxcrypt; Distribution's htpasswd needs bcrypt

        user, password = self.htpasswd
        # The cheapest cost (2^4): the registry checks the hash on every request, and
        # at the default 2^12 a push's dozens of requests spend seconds in bcrypt.
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        path = self.workdir / "htpasswd"
        path.write_text(f"{user}:{hashed}\n")
        return f"auth:\n  htpasswd:\n    realm: test\n    path: {path}\n"

    def stop(self) -> None:
        stop_process(self.proc)

    # Independent of the product's registry client, so tests check it for real.
    def digest(self, repository: str, tag: str) -> str | None:
        req = urllib.request.Request(
            f"http://{self.host}/v2/{repository}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def tags(self, repository: str) -> list[str]:
        try:
            with urllib.request.urlopen(
                f"http://{self.host}/v2/{repository}/tags/list", timeout=10
            ) as resp:
                return sorted(json.load(resp).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise


class PrometheusServer:
    """Debian's `prometheus` on 127.0.0.1:<free port>, scraping the given targets.

    `targets` all get `labels`; `groups` adds static configs of their own, each a
    (targets, labels) pair, e.g. one per model server with its `revision`.
    """

    def __init__(self, workdir: Path, targets: Sequence[str] = (), labels: dict | None = None,
                 interval: str = "1s", *,
                 groups: Sequence[tuple[Sequence[str], Mapping[str, str]]] = ()) -> None:
        self.workdir = workdir
        self.targets = list(targets)
        self.labels = labels or {}
        self.groups = [(list(t), dict(lab)) for t, lab in groups]
        self.interval = interval
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict:
        groups = ([(self.targets, self.labels)] if self.targets else []) + self.groups
        static = [{"targets": t, **({"labels": {k: str(v) for k, v in lab.items()}}
                                    if lab else {})} for t, lab in groups]
        return {"global": {"scrape_interval": self.interval,
                           "evaluation_interval": self.interval},
                "scrape_configs": [{"job_name": "test", "static_configs": static}]}

    def start(self) -> PrometheusServer:
        require(shutil.which("prometheus") is not None, "prometheus not installed")
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             f"--storage.tsdb.path={self.workdir / 'tsdb'}"],
            stdout=log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port, timeout=30):
            self.stop()
            raise RuntimeError("prometheus did not start")
        return self

    def stop(self) -> None:
        stop_process(self.proc)
