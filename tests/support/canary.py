"""Real parts for canary analysis tests: serve containers, load, and a Prometheus.

Each revision of the model is the real `serve` component image, run by Docker
with `--network host` on free loopback ports, serving a model this module
trains inside that image. Prometheus scrapes every container with its own
`revision`, `service` and `namespace` labels, as it would see a KServe
InferenceService's revisions. `Load` sends real v1 predictions at a split.

    pytest_plugins = ["tests.support.canary"]  # the fixtures, in a test module

    def test_x(canary_fleet):
        with canary_fleet.load({STABLE: 0.75, GOOD: 0.25}):
            ...query Prometheus at canary_fleet.prometheus.url...

As a plugin the fixtures are registered once, whichever modules ask for
them; the image build and the models are cached per session besides.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from mlops.adapters.builder import Engine
from mlops.adapters.metrics import Prometheus
from mlops.buildcontext import ContextFile, make_context
from tests.support.services import BASE_IMAGE, PrometheusServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE_IMAGE = "mlops-test/serve:canary"
MODEL_NAME = "cancer"
SERVICE, NAMESPACE = "cancer-predictor", "models"
STABLE, GOOD, ERRORS, SLOW, IDLE = (f"{SERVICE}-{n:05d}" for n in range(1, 6))

# The queries of components/README.md, checked against these servers by
# tests/test_canary_analysis.py. `{{ ... }}` are mlops.core.promql variables.
# `or vector(0)`: with no errors the numerator has no series at all, which
# would make a healthy canary "no data". clamp_min: below 10 ms the ratio of
# two latencies is noise (a few scheduler hiccups), so both count as 10 ms.
ERROR_RATE_QUERY = (
    '(sum(rate(serve_inference_requests_total{namespace="{{ namespace }}",revision="{{ revision }}",code!~"2.."}[{{ interval }}])) or vector(0))'
    ' / sum(rate(serve_inference_requests_total{namespace="{{ namespace }}",revision="{{ revision }}"}[{{ interval }}]))')
REQUESTS_QUERY = 'sum(increase(serve_inference_requests_total{namespace="{{ namespace }}",revision="{{ revision }}"}[{{ interval }}]))'
MEAN_LATENCY_QUERY = (
    'clamp_min(sum(rate(serve_inference_request_duration_seconds_sum{namespace="{{ namespace }}",revision="{{ revision }}"}[{{ interval }}]))'
    ' / sum(rate(serve_inference_request_duration_seconds_count{namespace="{{ namespace }}",revision="{{ revision }}"}[{{ interval }}])), 0.01)')

# Runs inside the serve image (the host has no scikit-learn), with the image's
# exact scikit-learn, so the models unpickle there. Arguments: output directory,
# number of trees of the slow model.
_MAKE_MODELS = """
import json, sys
from pathlib import Path
import joblib, numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

out, trees = Path(sys.argv[1]), int(sys.argv[2])
x, y = load_breast_cancer(return_X_y=True)
xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, stratify=y, random_state=42)
scaler = StandardScaler().fit(xtr)  # as components/preprocess does
xtr, xte = scaler.transform(xtr), scaler.transform(xte)
models = {
    "stable": (LogisticRegression(max_iter=200, random_state=42), xtr),
    "good": (LogisticRegression(C=0.5, max_iter=200, random_state=42), xtr),
    "errors": (LogisticRegression(max_iter=200, random_state=42), np.hstack([xtr, xtr[:, :1]])),
    "slow": (RandomForestClassifier(n_estimators=trees, random_state=42, n_jobs=2), xtr),
}
scores = {}
for name, (model, features) in models.items():
    model.fit(features, ytr)
    if name == "slow":
        model.n_jobs = None  # predict one tree after another, as a single worker would
    if name != "errors":
        scores[name] = float(model.score(xte, yte))
    (out / name).mkdir(exist_ok=True)
    joblib.dump(model, out / name / "model.joblib")
(out / "scores.json").write_text(json.dumps(scores))
(out / "rows.json").write_text(json.dumps(xte.tolist()))
"""
SLOW_TREES = 900  # 30-50 ms a prediction here: ~2x the latency limit, <50% of its loop
LOAD_RATE = 40.0  # requests per second, in total, of a Load


@functools.cache
def build_serve_image(tag: str = SERVE_IMAGE) -> str:
    """Build components/serve as `mlops build` does (same builder, context and
    build args, so Docker's layer cache is shared with it); once per session."""
    listing = subprocess.run(["git", "ls-files", "-s", "-z", "--", "components/serve"],
                             cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    files = []
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        mode, blob, _stage = meta.split()
        files.append(ContextFile(path, mode, blob))
    tar, dockerfile = make_context(REPO_ROOT, "components/serve", "components/serve/Dockerfile",
                                   files)
    with tar:
        Engine().build(tar, dockerfile, tag, {"BASE_IMAGE": BASE_IMAGE}, lambda line: None)
    return tag


@dataclass(frozen=True)
class CanaryModels:
    """Model directories (each holding model.joblib) and real held-out rows."""

    stable: Path  # LogisticRegression, as components/train fits it
    good: Path  # a retrained LogisticRegression (C=0.5): a healthy canary
    errors: Path  # fitted on 31 features: every real 30-feature request is a 400
    slow: Path  # a 900-tree random forest: right answers, many times slower
    rows: list[list[float]]  # standardised held-out rows, 30 features each
    scores: Mapping[str, float]  # held-out accuracy of stable, good and slow


def make_models(image: str, out: Path, trees: int = SLOW_TREES) -> CanaryModels:
    """Train the models inside `image` into `out`; reuse them if already there."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "rows.json").exists():  # written last
        proc = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}",
             "-v", f"{out}:/out", "--entrypoint", "python3", image, "-c", _MAKE_MODELS, "/out",
             str(trees)], capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.fail(f"training the canary test models failed:\n{proc.stderr[-2000:]}")
    return CanaryModels(out / "stable", out / "good", out / "errors", out / "slow",
                        json.loads((out / "rows.json").read_text()),
                        json.loads((out / "scores.json").read_text()))


@dataclass
class ServeContainer:
    """One `python -m serve` container serving `model_dir` as revision `revision`,
    on 127.0.0.1:`port` (REST: v1, v2 and /metrics). The ports are chosen when
    it is made, so Prometheus can be told about it before it starts."""

    revision: str
    model_dir: Path
    port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)  # host network: must not clash
    container: str = ""  # docker container id, once started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, image: str) -> ServeContainer:
        """`docker run -d` the serve image; does not wait for the model (see wait_ready)."""
        self.container = subprocess.run(
            ["docker", "run", "-d", "--network", "host", "--name",
             f"mlops-test-{self.revision}-{uuid.uuid4().hex[:6]}",
             "-v", f"{self.model_dir}:/mnt/models:ro", image, "--model_name", MODEL_NAME,
             "--http_port", str(self.port), "--grpc_port", str(self.grpc_port)],
            capture_output=True, text=True, check=True).stdout.strip()
        return self

    def predict(self, rows: Sequence[Sequence[float]]) -> tuple[int, float]:
        """POST a v1 prediction; (HTTP status, seconds it took)."""
        start = time.perf_counter()
        resp = requests.post(f"{self.url}/v1/models/{MODEL_NAME}:predict",
                             json={"instances": list(rows)}, timeout=10)
        return resp.status_code, time.perf_counter() - start

    def logs(self, tail: int = 30) -> str:
        proc = subprocess.run(["docker", "logs", "--tail", str(tail), self.container],
                              capture_output=True, text=True)
        return proc.stdout + proc.stderr


def wait_ready(containers: Sequence[ServeContainer], timeout: float = 120) -> None:
    """Wait until every container's model is ready; fail with its logs if not."""
    deadline = time.monotonic() + timeout
    for c in containers:
        while True:
            try:
                if requests.get(f"{c.url}/v1/models/{MODEL_NAME}", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve {c.revision} not ready in {timeout:g}s:\n{c.logs()}")
            time.sleep(0.2)


@contextmanager
def running(image: str, containers: Sequence[ServeContainer]) -> Iterator[None]:
    """Start the containers all at once, wait until they are ready, remove them after."""
    try:
        for c in containers:
            c.start(image)
        wait_ready(containers)
        yield
    finally:
        ids = [c.container for c in containers if c.container]
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def revision_prometheus(workdir: Path, containers: Sequence[ServeContainer]) -> PrometheusServer:
    """A started Prometheus that scrapes each container every second, labelled with
    its `revision`, `service` (SERVICE) and `namespace` (NAMESPACE), as relabelling
    would label a KServe revision's pods. Stop it with `.stop()`."""
    groups = [([c.target], {"revision": c.revision, "service": SERVICE,
                            "namespace": NAMESPACE}) for c in containers]
    return PrometheusServer(workdir, groups=groups).start()


def wait_scraped(prometheus: PrometheusServer, revisions: Sequence[str],
                 timeout: float = 30) -> None:
    """Wait until Prometheus has scraped every revision's container successfully."""
    client, deadline = Prometheus(prometheus.url), time.monotonic() + timeout
    pattern = "|".join(revisions)
    while (client.query(f'count(up{{revision=~"{pattern}"}} == 1)') or 0) < len(revisions):
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus did not scrape all of {', '.join(revisions)}")
        time.sleep(0.25)


@dataclass
class Load:
    """Real v1 predictions, one row each, at about `rate` per second in total,
    split between base URLs by weight, from a pool of `workers` threads.

    A smooth weighted round robin picks the targets, so any few consecutive
    requests follow the split. Use as a context manager; `counts` holds the
    HTTP statuses seen per URL (0: no answer) and `seconds` the latencies.
    """

    split: Mapping[str, float]
    rows: Sequence[Sequence[float]]
    rate: float = LOAD_RATE
    workers: int = 8
    counts: dict[str, Counter] = field(init=False)
    seconds: dict[str, list[float]] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {url: Counter() for url in self.split}
        self.seconds = {url: [] for url in self.split}
        self._credit = dict.fromkeys(self.split, 0.0)
        self._rows = itertools.cycle(self.rows)
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._next = 0.0
        self._workers: list[Future] = []

    def __enter__(self) -> Load:
        self._next = time.monotonic()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="load")
        self._workers = [pool.submit(self._worker) for _ in range(self.workers)]
        pool.shutdown(wait=False)  # the workers run until __exit__ stops them
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.result()  # a load generator that broke must not pass silently

    def _take(self) -> tuple[float, str, Sequence[float]]:
        """The next slot on the shared timetable, its target and its row."""
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next + 1 / self.rate, now - 0.5)  # no catch-up bursts
            for url, weight in self.split.items():
                self._credit[url] += weight
            url = max(self._credit, key=self._credit.__getitem__)
            self._credit[url] -= sum(self.split.values())
            return self._next, url, next(self._rows)

    def _worker(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            slot, url, row = self._take()
            if self._stop.wait(max(0.0, slot - time.monotonic())):
                break
            start = time.perf_counter()
            try:
                status = session.post(f"{url}/v1/models/{MODEL_NAME}:predict",
                                      json={"instances": [list(row)]}, timeout=10).status_code
            except requests.RequestException:
                status = 0
            with self._lock:
                self.counts[url][status] += 1
                self.seconds[url].append(time.perf_counter() - start)


@dataclass
class Fleet:
    """Serve containers by revision, and the Prometheus scraping them."""

    containers: dict[str, ServeContainer]
    prometheus: PrometheusServer
    models: CanaryModels

    def __getitem__(self, revision: str) -> ServeContainer:
        return self.containers[revision]

    def values(self, revision: str, baseline: str = STABLE) -> dict[str, str]:
        """The template values of an analysis of `revision` against `baseline`."""
        return {"service": SERVICE, "namespace": NAMESPACE, "revision": revision,
                "baseline_revision": baseline}

    def load(self, split: Mapping[str, float], rate: float = LOAD_RATE) -> Load:
        """A Load on these containers, split by revision (weights)."""
        return Load({self[r].url: w for r, w in split.items()}, self.models.rows, rate)


@pytest.fixture(scope="session")
def serve_image(docker_engine) -> str:
    """The tag of the real serve component image, built once."""
    return build_serve_image()


@pytest.fixture(scope="session")
def canary_models(serve_image, tmp_path_factory) -> CanaryModels:
    """The four test models (stable, good, errors, slow), trained once."""
    return make_models(serve_image, tmp_path_factory.getbasetemp() / "canary-models")


@pytest.fixture(scope="module")
def canary_fleet(serve_image, tmp_path_factory) -> Iterator[Fleet]:
    """Five serve containers (STABLE, GOOD, ERRORS, SLOW, and IDLE, a good model
    that no test sends traffic to) and a Prometheus scraping them every second."""
    models_dir = tmp_path_factory.getbasetemp() / "canary-models"
    plan = {STABLE: "stable", GOOD: "good", ERRORS: "errors", SLOW: "slow", IDLE: "good"}
    containers = {rev: ServeContainer(rev, models_dir / name) for rev, name in plan.items()}
    # Prometheus starts while the models are trained and the servers boot.
    prometheus = revision_prometheus(tmp_path_factory.mktemp("canary-prom"),
                                     list(containers.values()))
    try:
        models = make_models(serve_image, models_dir)
        with running(serve_image, list(containers.values())):
            wait_scraped(prometheus, list(containers))
            yield Fleet(containers, prometheus, models)
    finally:
        prometheus.stop()
