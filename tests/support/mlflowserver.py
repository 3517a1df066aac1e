"""A real MLflow tracking server for tests: `mlflow server` from the virtualenv hack/setup.sh
makes, on 127.0.0.1:<free port>, with a SQLite backend and a local artifact root.

Read back over MLflow's REST API with urllib, independent of the mlflow client that
mlops itself uses, so a test checks what the server really holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.services import free_port, require, stop_process

VENV_ENV = "MLOPS_MLFLOW_VENV"
DEFAULT_VENV = Path("/opt/mlops-mlflow-venv")  # hack/setup.sh's


def mlflow_executable() -> Path | None:
    venv = Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)
    exe = venv / "bin" / "mlflow"
    return exe if exe.is_file() and os.access(exe, os.X_OK) else None


class MlflowServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> MlflowServer:
        exe = mlflow_executable()
        require(exe is not None, f"no MLflow server virtualenv at ${VENV_ENV} or {DEFAULT_VENV}: "
                "run hack/setup.sh")
        log = open(self.workdir / "mlflow.log", "wb")  # noqa: SIM115 - kept open for the process
        self.proc = subprocess.Popen(
            [str(exe), "server", "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
             "--default-artifact-root", str(self.workdir / "artifacts"),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.workdir / "mlflow.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mlflow server did not start:\n{tail}")
            time.sleep(0.5)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> None:
        stop_process(self.proc)

    # -- reading back over the REST API -------------------------------------------------

    def get(self, endpoint: str, **params: str) -> dict:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/2.0/mlflow/{endpoint}?{query}",
                                    timeout=10) as resp:
            return json.load(resp)

    def post(self, endpoint: str, body: dict) -> dict:
        req = urllib.request.Request(f"{self.url}/api/2.0/mlflow/{endpoint}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def run(self, run_id: str) -> dict:
        return self.get("runs/get", run_id=run_id)["run"]

    def version(self, model: str, version: str) -> dict:
        return self.get("model-versions/get", name=model, version=version)["model_version"]

    def alias(self, model: str, alias: str) -> str | None:
        try:
            return self.get("registered-models/alias", name=model, alias=alias)[
                "model_version"]["version"]
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 404):  # no such alias (this server answers 400)
                return None
            raise
