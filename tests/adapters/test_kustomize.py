"""`kubectl kustomize` as the promotion, validate, rollout and status commands run it."""

from __future__ import annotations

import socket
import threading

import pytest

from mlops.adapters.kustomize import KustomizeError, render

KUSTOMIZATION = "resources: [cm.yaml]\nnamePrefix: dev-\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"


class Listener:
    """A TCP port on 127.0.0.1 that accepts and counts connections, answering nothing
    (as an unreachable API server behind a load balancer would)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    listener = Listener()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
        f"clusters:\n- name: prod\n  cluster: {{server: 'https://127.0.0.1:{listener.port}'}}\n"
        "contexts:\n- name: prod\n  context: {cluster: prod, user: ci}\n"
        "users:\n- name: ci\n  user: {token: not-needed}\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield listener
    listener.close()


def overlay(tmp_path, kustomization: str = KUSTOMIZATION):
    folder = tmp_path / "overlay"
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(kustomization)
    (folder / "cm.yaml").write_text(CONFIGMAP)
    return folder


def test_rendering_asks_no_cluster_even_with_a_kubeconfig(cluster, tmp_path):
    # Some kubectl builds (the Google Cloud SDK's dispatcher) ask the kubeconfig's
    # cluster for its version before any command, `kustomize` included.
    docs = render(overlay(tmp_path))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [("ConfigMap", "dev-settings")]
    assert cluster.accepted == 0


def test_a_broken_overlay_is_one_line(cluster, tmp_path):
    with pytest.raises(KustomizeError) as info:
        render(overlay(tmp_path, "resources: [missing.yaml]\n"), "environments/dev")
    message = info.value.message
    assert message.startswith("kubectl kustomize environments/dev failed: ")
    assert "missing.yaml" in message and "\n" not in message
    assert cluster.accepted == 0
