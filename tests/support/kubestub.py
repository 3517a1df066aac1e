"""A stub of the Kubernetes API server: the only fake the project allows.

No API server can run here, so the `cluster` adapter talks to this one over
real HTTP(S) on 127.0.0.1. It answers GET for namespaced custom objects the
way kube-apiserver does (the object, or a 404 `Status`; a plain-text 404 for
a resource it does not serve), checks a bearer token when given one (401
otherwise), and speaks TLS with a certificate made by `openssl` for the test.
Every object put into it is validated against its upstream CRD schema first,
so the adapter never sees a shape a real cluster would not serve. Tests may
replace objects while it runs, also from a timer thread (`later`) or once it
has answered a number of requests (`after`, `wait_answered`).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.support import crds
from tests.support.services import require

# kind -> plural, as the CRDs in ../shared/crds name them
PLURALS = {"Application": "applications", "InferenceService": "inferenceservices"}
SERVED = {("argoproj.io", "v1alpha1", "applications"),
          ("serving.kserve.io", "v1beta1", "inferenceservices")}
_PATH = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/"
                   r"(?P<plural>[^/]+)/(?P<name>[^/]+)$")
T0 = "2026-01-05T10:00:00Z"
T1 = "2026-01-05T10:02:30Z"


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """The `Status` object kube-apiserver sends with every error."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return body


class KubeStub:
    def __init__(self, token: str | None = None, tls_dir: Path | None = None) -> None:
        self.token = token
        self.tls_dir = tls_dir
        self.ca_file: Path | None = None
        self.fail_with: int | None = None  # answer every request with this status code
        self.requests: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self._objects: dict[tuple[str, str, str, str, str], dict] = {}
        self._lock = threading.Lock()
        self._answered = 0  # object GETs answered so far; see wait_answered
        self._answered_changed = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> KubeStub:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.stub = self  # type: ignore[attr-defined]
        if self.tls_dir is not None:
            cert, key = self_signed_cert(self.tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            # handshake in the request's thread, so one stuck client cannot block accept()
            server.socket = context.wrap_socket(server.socket, server_side=True,
                                                do_handshake_on_connect=False)
            self.ca_file = cert
        self._server = server
        # a short poll interval: stop() waits for it, and tests stop many stubs
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)

    def __enter__(self) -> KubeStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- objects ----------------------------------------------------------

    def put(self, *objects: dict) -> None:
        """Store objects, each validated against its CRD first (invalid = test error)."""
        for obj in objects:
            crds.validate(obj)
            with self._lock:
                self._objects[_key(obj)] = copy.deepcopy(obj)

    def remove(self, obj: dict) -> None:
        with self._lock:
            self._objects.pop(_key(obj), None)

    def later(self, delay: float, *objects: dict) -> threading.Timer:
        """Put `objects` after `delay` seconds, from another thread (Argo CD catching up)."""
        for obj in objects:
            crds.validate(obj)  # fail now, in the test's thread, not silently in the timer
        timer = threading.Timer(delay, self.put, objects)
        timer.daemon = True
        timer.start()
        return timer

    def after(self, requests: int, *objects: dict) -> threading.Thread:
        """Put `objects` once the stub has answered `requests` GETs of objects in all,
        from another thread: those saw the state before, every later one sees these.
        Other paths (kubectl asks for /version now and then) are not counted."""
        for obj in objects:
            crds.validate(obj)  # fail now, in the test's thread, not silently in the thread

        def put_when_answered() -> None:
            self.wait_answered(requests)
            self.put(*objects)
        thread = threading.Thread(target=put_when_answered, daemon=True)
        thread.start()
        return thread

    @property
    def answered(self) -> int:
        """How many GETs of objects the stub has answered (each one's reply written)."""
        with self._answered_changed:
            return self._answered

    def wait_answered(self, requests: int, timeout: float | None = None) -> bool:
        """Block until the stub has answered `requests` GETs of objects; False on timeout."""
        with self._answered_changed:
            return self._answered_changed.wait_for(lambda: self._answered >= requests, timeout)

    def _count_answer(self) -> None:
        with self._answered_changed:
            self._answered += 1
            self._answered_changed.notify_all()

    def lookup(self, group: str, version: str, ns: str, plural: str, name: str) -> dict | None:
        with self._lock:
            found = self._objects.get((group, version, ns, plural, name))
            return copy.deepcopy(found) if found is not None else None

    # -- client configuration ----------------------------------------------

    def kubeconfig(self, path: Path, token: str | None = None, context: str = "stub",
                   extra_contexts: tuple[str, ...] = ()) -> Path:
        """A kubeconfig pointing at this stub (contexts share its one cluster and user)."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.ca_file is not None:
            cluster["certificate-authority"] = str(self.ca_file)
        user = {"token": token} if token is not None else {}
        names = (context, *extra_contexts)
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": context,
               "clusters": [{"name": "stub", "cluster": cluster}],
               "users": [{"name": "stub-user", "user": user}],
               "contexts": [{"name": n, "context": {"cluster": "stub", "user": "stub-user"}}
                            for n in names]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc))
        return path

    def service_account(self, sa_dir: Path, token: str) -> dict[str, str]:
        """A pod's service-account dir (token, ca.crt) and the environment kubelet sets."""
        assert self.ca_file is not None, "in-cluster config needs TLS: KubeStub(tls_dir=...)"
        sa_dir.mkdir(parents=True, exist_ok=True)
        (sa_dir / "token").write_text(token)
        shutil.copy(self.ca_file, sa_dir / "ca.crt")
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.port)}


def _key(obj: dict) -> tuple[str, str, str, str, str]:
    group, version = obj["apiVersion"].split("/")
    meta = obj["metadata"]
    return group, version, meta["namespace"], PLURALS[obj["kind"]], meta["name"]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, made with the openssl CLI."""
    require(shutil.which("openssl") is not None, "openssl not installed")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=kubestub",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    return cert, key


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that rejects our certificate is what some tests want, not noise


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        stub: KubeStub = self.server.stub  # type: ignore[attr-defined]
        try:
            self._answer(stub)
        finally:
            if _PATH.match(self.path.split("?", 1)[0]):
                stub._count_answer()

    def _answer(self, stub: KubeStub) -> None:
        path = self.path.split("?", 1)[0]
        auth = self.headers.get("Authorization")
        stub.requests.append((path, auth))
        if stub.token is not None and not _bearer_matches(auth, stub.token):
            return self._json(401, status_body(401, "Unauthorized", "Unauthorized"))
        if stub.fail_with is not None:
            code = stub.fail_with
            return self._json(code, status_body(code, "InternalError", "etcdserver: leader changed"))
        match = _PATH.match(path)
        if not match or (match["group"], match["version"], match["plural"]) not in SERVED:
            return self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
        found = stub.lookup(*match.group("group", "version", "ns", "plural", "name"))
        if found is None:
            g, p, n = match["group"], match["plural"], match["name"]
            return self._json(404, status_body(404, "NotFound", f'{p}.{g} "{n}" not found',
                                               {"name": n, "group": g, "kind": p}))
        return self._json(200, found)

    def _json(self, code: int, body: dict) -> None:
        self._send(code, json.dumps(body).encode(), "application/json")

    def _send(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and value.strip() == token


# -- realistic objects ------------------------------------------------------------


def application(name: str, *, revision: str, dest_namespace: str, path: str,
                namespace: str = "argocd", sync: str = "Synced", health: str = "Healthy",
                phase: str = "Succeeded", service: str = "cancer",
                repo_url: str = "https://git.example.com/ml/platform.git",
                target_revision: str = "main") -> dict:
    """An Argo CD Application as the controller reports it after a sync of `revision`."""
    source = {"repoURL": repo_url, "path": path, "targetRevision": target_revision}
    destination = {"server": "https://kubernetes.default.svc", "namespace": dest_namespace}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "generation": 7,
                     "resourceVersion": "48213", "uid": "6f1c2a4e-7d0b-4c43-9b0e-1d2f3a4b5c6d",
                     "creationTimestamp": T0},
        "spec": {"project": "default", "source": source, "destination": destination,
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}},
        "status": {
            "sync": {"status": sync, "revision": revision,
                     "comparedTo": {"source": source, "destination": destination}},
            "health": {"status": health, "lastTransitionTime": T1},
            "operationState": _operation(revision, source, phase),
            "resources": [{"group": "serving.kserve.io", "version": "v1beta1",
                           "kind": "InferenceService", "namespace": dest_namespace,
                           "name": service, "status": sync, "health": {"status": health}}],
            "sourceType": "Kustomize", "reconciledAt": T1,
            "history": [{"id": 3, "revision": revision, "deployedAt": T1, "source": source,
                         "deployStartedAt": T0}],
        },
    }


def _operation(revision: str, source: dict, phase: str) -> dict:
    messages = {"Succeeded": "successfully synced (all tasks run)",
                "Running": "one or more tasks are running", "Failed": "one or more objects failed"}
    return {"operation": {"sync": {"revision": revision}, "initiatedBy": {"automated": True},
                          "retry": {"limit": 5}},
            "phase": phase, "message": messages.get(phase, phase), "startedAt": T0,
            "finishedAt": T1, "syncResult": {"revision": revision, "source": source}}


def revision_name(service: str, n: int) -> str:
    return f"{service}-predictor-{n:05d}"


def inference_service(name: str, namespace: str, *, latest: int = 1, previous: int | None = None,
                      percent: int = 100, ready: bool = True, stale: bool = False) -> dict:
    """A serverless KServe InferenceService. With `previous` and percent < 100 it is a canary:
    the latest revision carries `percent` (tag latest), the last rolled-out one the rest (prev)."""
    canary = previous is not None and percent < 100
    predictor: dict[str, Any] = {"minReplicas": 1, "containers": [
        {"name": "kserve-container", "image": f"127.0.0.1:5000/mlops/serve@sha256:{'ab' * 32}",
         "args": ["--model_name=cancer", "--model_dir=/mnt/models"]}]}
    if canary:
        predictor["canaryTrafficPercent"] = percent
    generation = latest + 1
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "generation": generation,
                     "resourceVersion": "90210", "creationTimestamp": T0,
                     "annotations": {"serving.kserve.io/deploymentMode": "Knative"}},
        "spec": {"predictor": predictor},
        "status": {
            "observedGeneration": generation - 1 if stale else generation,
            "url": f"http://{name}.{namespace}.example.com",
            "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
            "deploymentMode": "Knative",
            "conditions": _conditions(name, latest, ready),
            "components": {"predictor": _predictor_status(name, namespace, latest, previous,
                                                          percent, canary, ready)},
            "modelStatus": {"transitionStatus": "UpToDate" if ready else "InProgress",
                            "states": {"activeModelState": "Loaded",
                                       "targetModelState": "Loaded" if ready else "Loading"},
                            "copies": {"failedCopies": 0, "totalCopies": 1}},
        },
    }


def _conditions(name: str, latest: int, ready: bool) -> list[dict]:
    def cond(kind: str, ok: bool) -> dict:
        item = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": T1}
        if not ok:
            item["reason"] = "RevisionMissing"
            item["message"] = (f'Configuration "{name}-predictor" is waiting for a Revision '
                               f'to become ready: {revision_name(name, latest)} is not ready')
        return item

    return [cond("IngressReady", True), cond("PredictorConfigurationReady", ready),
            cond("PredictorReady", ready), cond("PredictorRouteReady", True),
            cond("Ready", ready)]


def _predictor_status(name: str, ns: str, latest: int, previous: int | None, percent: int,
                      canary: bool, ready: bool) -> dict:
    newest, prev = revision_name(name, latest), previous and revision_name(name, previous)
    ready_rev = newest if ready else (prev or None)
    status: dict[str, Any] = {"latestCreatedRevision": newest,
                              "url": f"http://{name}-predictor.{ns}.example.com",
                              "address": {"url": f"http://{name}-predictor.{ns}.svc.cluster.local"}}
    if ready_rev:
        status["latestReadyRevision"] = ready_rev
    if canary:  # KServe moves latestRolledoutRevision only when a revision reaches 100%
        status["latestRolledoutRevision"] = prev
        status["traffic"] = [
            {"revisionName": newest, "percent": percent, "latestRevision": True, "tag": "latest",
             "url": f"http://latest-{name}-predictor.{ns}.example.com"},
            {"revisionName": prev, "percent": 100 - percent, "latestRevision": False,
             "tag": "prev", "url": f"http://prev-{name}-predictor.{ns}.example.com"}]
    else:
        status["latestRolledoutRevision"] = newest
        if prev:
            status["previousRolledoutRevision"] = prev
        status["traffic"] = [{"revisionName": newest, "percent": 100, "latestRevision": True}]
    return status
