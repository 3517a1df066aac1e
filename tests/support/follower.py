"""Argo CD and KServe for the Kubernetes API stub: they follow the real git remote.

No controller can run here, so `Follower` does what they would do with our
commits, late, as they are: it polls the bare remote's branch, and `delay`
seconds after each new head, and not before the stub has answered two more
GETs of objects (one poll of both by the command waiting for the sync, so it
always sees the state before, however slow the machine), it reports that
commit in the stub as Argo CD would after a sync (Application
`status.sync.revision`, Synced, Healthy) and the InferenceService as KServe
would (`status.components.predictor.traffic`, the latest revision at the
percent of the environment's release.yaml `rollout`). Until then the stub
keeps serving the previous state, which is what `mlops rollout run` must
wait out. The field names are KServe's
(kserve/kserve pkg/apis/serving/v1beta1/inference_service_status.go:
ComponentStatusSpec.Traffic, Knative TrafficTarget) and Argo CD's
(argo-cd pkg/apis/application/v1alpha1/types.go: SyncStatus.Revision), and
every object passes the stub's CRD validation.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support import kubestub as ks


@dataclass
class Follower:
    stub: ks.KubeStub
    remote: Path  # the bare repository Argo CD would watch
    env: str = "prod"
    namespace: str = "models"  # the InferenceService's
    service: str = "cancer"
    delay: float = 1.0  # seconds from a push until the cluster shows it
    branch: str = "main"
    reported: dict[str, float] = field(default_factory=dict)  # commit -> epoch time shown
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def objects(self, commit: str) -> tuple[dict, dict]:
        """(Application, InferenceService) once `commit` is synced and rolled out."""
        app = ks.application(f"mlops-{self.env}", revision=commit, dest_namespace=self.namespace,
                             path=f"environments/{self.env}", service=self.service)
        percent = rollout_percent(self.remote, commit, self.env)
        # revision 2 is the canary's, 1 the release it is measured against
        isvc = ks.inference_service(self.service, self.namespace, latest=2, previous=1,
                                    percent=percent)
        return app, isvc

    def show(self, commit: str) -> None:
        """Report `commit` as synced now (the state before any push the test makes)."""
        self.stub.put(*self.objects(commit))
        self.reported[commit] = time.time()

    def __enter__(self) -> Follower:
        self.show(self.head())
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def head(self) -> str:
        return _git(self.remote, "rev-parse", f"refs/heads/{self.branch}")

    def _follow(self) -> None:
        seen = self.head()
        while not self._stop.wait(0.1):
            head = self.head()
            if head == seen:
                continue
            seen = head
            answered = self.stub.answered
            if self._stop.wait(self.delay):  # Argo CD's poll, the sync, KServe's rollout
                return
            while not self.stub.wait_answered(answered + 2, timeout=0.1):
                if self._stop.is_set():
                    return
            self.show(head)


def rollout_percent(remote: Path, commit: str, env: str) -> int:
    """Traffic on the latest revision as release.yaml at `commit` asks for it."""
    text = _git(remote, "show", f"{commit}:environments/{env}/release.yaml")
    rollout = (yaml.safe_load(text) or {}).get("rollout") or {}
    if rollout.get("state") == "canary":
        return int(rollout["percent"])
    return 0 if rollout.get("state") == "aborted" else 100


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True,
                          text=True, check=True).stdout.strip()
