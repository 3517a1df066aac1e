"""The demo's stand-in for a KServe canary: two serve containers, a Prometheus, load.

    python3 hack/demo_canary.py fleet --dir D --image IMG --model DIR --stable-model DIR --rows CSV
    python3 hack/demo_canary.py down --dir D

`fleet` runs the real `serve` image twice with `docker run --network host` on
free loopback ports, as the two Knative revisions of the InferenceService
`cancer` in namespace `prod`: STABLE (the revision prod serves now) and
CANARY (the release being rolled out). A Debian `prometheus` scrapes both
every second and labels their series with `revision`, `service` and
`namespace`, as KServe's relabelling would. Once both answer and are scraped
it writes D/fleet.json, then sends real v1 predictions (rows of the test set
the pipeline wrote) at RATE per second, CANARY getting the percent written in
D/split, as Knative would split the traffic. The requests seen, per split,
revision and HTTP status, go to D/load.json. It runs until SIGTERM/SIGINT (or
until the shell that started it is gone) and then removes what it started.

`down` removes what a killed `fleet` may have left: the containers labelled
for this directory and the Prometheus whose pid is in D/prometheus.pid.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests
import yaml

SERVICE, NAMESPACE, MODEL = "cancer", "prod", "cancer"
STABLE, CANARY = f"{SERVICE}-predictor-00001", f"{SERVICE}-predictor-00002"
LABEL = "mlops-demo"  # docker label: the demo directory, for cleanup and tests
RATE, WORKERS = 30.0, 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_json(path: Path, doc: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


class Revision:
    def __init__(self, name: str, image: str, model: Path, label: str) -> None:
        self.name, self.image, self.model, self.label = name, image, model, label
        self.port, self.grpc_port = free_port(), free_port()
        self.container = f"{LABEL}-{os.getpid()}-{name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(
            ["docker", "run", "-d", "--network", "host", "--name", self.container,
             "--label", f"{LABEL}={self.label}", "-v", f"{self.model}:/mnt/models:ro",
             self.image, "--model_name", MODEL, "--http_port", str(self.port),
             "--grpc_port", str(self.grpc_port)],
            check=True, stdout=subprocess.DEVNULL)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/v1/models/{MODEL}", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        logs = subprocess.run(["docker", "logs", "--tail", "30", self.container],
                              capture_output=True, text=True)
        raise SystemExit(f"serve {self.name} not ready:\n{logs.stdout}{logs.stderr}")

    def as_dict(self) -> dict[str, object]:
        return {"revision": self.name, "url": self.url, "container": self.container,
                "image": self.image, "model": str(self.model)}


class Prometheus:
    def __init__(self, workdir: Path, revisions: list[Revision]) -> None:
        self.workdir, self.port = workdir, free_port()
        self.revisions = revisions
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict:
        static = [{"targets": [f"127.0.0.1:{r.port}"],
                   "labels": {"revision": r.name, "service": SERVICE, "namespace": NAMESPACE}}
                  for r in self.revisions]
        return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": "serve", "static_configs": static}]}

    def start(self) -> None:
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        with open(self.workdir / "prometheus.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={config}",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 f"--storage.tsdb.path={self.workdir / 'tsdb'}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        (self.workdir / "prometheus.pid").write_text(f"{self.proc.pid}\n")

    def scraped(self) -> int:
        try:
            resp = requests.get(f"{self.url}/api/v1/query", timeout=2, params={
                "query": f'count(up{{namespace="{NAMESPACE}"}} == 1)'})
            result = resp.json()["data"]["result"]
            return int(float(result[0]["value"][1])) if result else 0
        except (requests.RequestException, ValueError, KeyError):
            return 0

    def wait_scraped(self, deadline: float) -> None:
        while self.scraped() < len(self.revisions):
            if time.monotonic() > deadline or (self.proc and self.proc.poll() is not None):
                raise SystemExit(f"Prometheus did not scrape both revisions; see "
                                 f"{self.workdir / 'prometheus.log'}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        (self.workdir / "prometheus.pid").unlink(missing_ok=True)


class Load:
    """RATE predictions a second from WORKERS threads; CANARY gets `percent`% of them,
    picked by a smooth weighted round robin, so any few requests follow the split."""

    def __init__(self, stable: Revision, canary: Revision, rows: list[list[float]],
                 split_file: Path) -> None:
        self.urls = {STABLE: stable.url, CANARY: canary.url}
        self.rows, self.split_file = rows, split_file
        self.counts: dict[int, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        self.credit = dict.fromkeys(self.urls, 0.0)
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.next_slot, self.sent = time.monotonic(), 0
        self.threads = [threading.Thread(target=self.worker, daemon=True)
                        for _ in range(WORKERS)]

    def percent(self) -> int:
        try:
            return max(0, min(100, int(self.split_file.read_text().strip() or 0)))
        except (OSError, ValueError):
            return 0

    def take(self, percent: int) -> tuple[float, str, list[float]]:
        with self.lock:
            self.next_slot = max(self.next_slot + 1 / RATE, time.monotonic() - 0.5)
            for name, weight in ((CANARY, percent), (STABLE, 100 - percent)):
                self.credit[name] += weight
            name = max(self.credit, key=self.credit.__getitem__)
            self.credit[name] -= 100
            self.sent += 1
            return self.next_slot, name, self.rows[self.sent % len(self.rows)]

    def worker(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            percent = self.percent()
            slot, name, row = self.take(percent)
            if self.stop.wait(max(0.0, slot - time.monotonic())):
                return
            try:
                status = session.post(f"{self.urls[name]}/v1/models/{MODEL}:predict",
                                      json={"instances": [row]}, timeout=10).status_code
            except requests.RequestException:
                status = 0
            with self.lock:
                self.counts[percent][name][str(status)] += 1

    def snapshot(self) -> dict:
        with self.lock:
            return {str(p): {name: dict(c) for name, c in by_rev.items()}
                    for p, by_rev in sorted(self.counts.items())}

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def read_rows(path: Path) -> list[list[float]]:
    """The feature columns of the pipeline's test set (all but `target`)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return [[float(v) for k, v in row.items() if k != "target"] for row in reader]


def fleet(args: argparse.Namespace) -> int:
    workdir = args.dir.resolve()
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()
        if not (workdir / "fleet.json").exists():  # still starting: give up now
            raise SystemExit(143)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    parent = os.getppid()
    rows = read_rows(args.rows)
    revisions = [Revision(STABLE, args.image, args.stable_model or args.model, args.label),
                 Revision(CANARY, args.image, args.model, args.label)]
    prometheus = Prometheus(workdir, revisions)
    try:
        prometheus.start()
        for r in revisions:
            r.start()
        deadline = time.monotonic() + 180
        for r in revisions:
            r.wait_ready(deadline)
        prometheus.wait_scraped(deadline)
        stable, canary = revisions
        with Load(stable, canary, rows, workdir / "split") as load:
            write_json(workdir / "fleet.json", {
                "prometheus": prometheus.url, "service": SERVICE, "namespace": NAMESPACE,
                "stable": revisions[0].as_dict(), "canary": revisions[1].as_dict(),
                "rate": RATE})
            while not stop.wait(2) and os.getppid() == parent:
                write_json(workdir / "load.json", load.snapshot())
        write_json(workdir / "load.json", load.snapshot())
        return 0
    finally:
        subprocess.run(["docker", "rm", "-f", *(r.container for r in revisions)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        prometheus.stop()


def down(args: argparse.Namespace) -> int:
    """Remove leftovers of a fleet for this directory that did not clean up after itself."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}={args.label}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], stdout=subprocess.DEVNULL)
    pidfile = args.dir / "prometheus.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text().strip() or 0)
        cmdline = Path(f"/proc/{pid}/cmdline")
        if pid and cmdline.exists() and str(args.dir.resolve()).encode() in cmdline.read_bytes():
            os.kill(pid, signal.SIGTERM)
        pidfile.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fleet", "down"):
        p = sub.add_parser(name)
        p.add_argument("--dir", type=Path, required=True, help="working directory")
        p.add_argument("--label", required=True, help=f"value of the {LABEL} docker label")
    run = sub.choices["fleet"]
    run.add_argument("--image", required=True, help="the serve image, by digest")
    run.add_argument("--model", type=Path, required=True, help="the canary's model directory")
    run.add_argument("--stable-model", type=Path,
                     help="the stable revision's model directory (default: --model)")
    run.add_argument("--rows", type=Path, required=True, help="test set CSV to send")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    return fleet(args) if args.command == "fleet" else down(args)


if __name__ == "__main__":
    sys.exit(main())
