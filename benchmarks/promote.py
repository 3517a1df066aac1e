#!/usr/bin/env python3
"""Promotion of 200 pinned images into one overlay, and ten racing promoters.

Targets (DESIGN.md, "Performance targets"): `mlops promote` of 200 pinned
images into one overlay is within 2x of the floor, which is the same file
edits made by a script plus `git commit`; ten promoters racing on one remote
all land, and the total time is reported.

Set-up, not measured: a registry on 127.0.0.1 holding two small images per
component (A and B: one tiny layer, configs that differ), pushed straight
through the Distribution HTTP API (no docker build), and two build records
that name them by the digests the registry reports. A bare git remote and a
clone with 200 components (`component.yaml`, a 3-line Dockerfile), the
environments dev/staging/prod with no gates, and no pipelines/ folder (so no
kfp compile happens).

Measured, each as the median of N runs after one warm-up, alternating A and B
so that every run re-pins all 200 images; the first four run interleaved,
round-robin, so that load from other work falls on promote and floor alike:
  CLI          `python3 -m mlops promote --to dev --build A|B` (fresh process)
  in-process   mlops.cli.main([...]) after one import: the work without
               interpreter start-up and imports
  floor        a script that makes the same edits (the 200 `images:` entries of
               environments/dev/kustomization.yaml and environments/dev/release.yaml,
               byte for byte what mlops writes) and runs `git commit`, in a plain
               clone of the remote; as a fresh `python3 -c` process and in-process
  breakdown    the pieces of a promotion on their own: start-up and imports, the
               clone, the 200 registry HEAD checks, the overlay edit, the push
Then ten `mlops promote` processes started together against one remote, each
with its own build record and metrics (a distinct release); all must exit 0 and
the remote must gain exactly ten commits. And one cProfile run of the
in-process promotion, top functions printed.

Usage: python3 benchmarks/promote.py [--repeat N] [--components N]
       [--race-components N] [--rounds N] [--no-readme]
It rewrites its own section of benchmarks/README.md and exits 0 whether or not
the targets are met; 1 means it could not measure.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gzip
import hashlib
import io
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import common
from common import BenchError, LocalRegistry, Timing, fmt_ratio, fmt_seconds, run

SECTION = "promote"
NAMESPACE = "bench"
ENV = "dev"
FLOOR_TARGET = 2.0  # promote within 2x of the floor
BUSY = 0.25  # CPU use by others above which the figures are flagged as noisy
PROFILE_TOP = 20
PROFILE_TOP_OWN = 12
RACERS = 10
RACE_TIMEOUT = 600
BACKOFF_INITIAL, BACKOFF_MAX = 0.1, 2.0  # in_workspace's retry policy, for the report

GIT_ID = ["-c", "user.name=mlops bench", "-c", "user.email=bench@127.0.0.1",
          "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]
DOCKERFILE = "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nCOPY src/ /app/\n"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
VARIANTS = ("a", "b")
# What a promotion imports beyond `import mlops.cli` (promote, and the registry
# client with the docker SDK for credentials); the start-up row imports them all.
PROMOTE_IMPORTS = "import mlops.cli, mlops.commands.promote, mlops.builder, mlops.registry"

# The floor: the same two files, byte for byte, and one `git commit`. Run as
# `python3 -c FLOOR_SCRIPT CLONE RECORD` (fresh process) or exec'd once and
# called (in-process). Only the standard library: a script, not mlops.
FLOOR_SCRIPT = r'''
import hashlib
import json
import subprocess
import sys
from pathlib import Path

HEADER = "# Written by `mlops promote`, `rollback` and `rollout`. Do not edit by hand.\n"
GIT = ["git", "-c", "user.name=floor", "-c", "user.email=floor@127.0.0.1",
       "-c", "commit.gpgsign=false"]


def floor(clone, record_path, env="dev", commit=True):
    root = Path(clone)
    record = json.loads(Path(record_path).read_text())
    builds = sorted(record["builds"], key=lambda b: b["component"])
    folder = root / "environments" / env
    # kustomization.yaml: everything up to `images:` stays; the block is rewritten.
    kust = folder / "kustomization.yaml"
    text = kust.read_text()
    cut = text.find("\nimages:\n")
    out = [text if cut < 0 else text[: cut + 1], "images:\n"]
    for b in builds:
        out += [f"  - name: {b['component']}\n", f"    newName: {b['image']}\n",
                f"    digest: {b['digest']}\n"]
    kust.write_text("".join(out))
    # release.yaml: the release record, with its content-addressed id.
    source = record.get("source_commit")
    content = {"source_commit": source,
               "images": {b["component"]: {"image": b["image"], "digest": b["digest"]}
                          for b in builds},
               "pipelines": {}, "model_uri": None, "metrics": {}}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    rid = "r-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]
    out = [HEADER, "apiVersion: mlops.dev/v1\n", "kind: Release\n", f"id: {rid}\n",
           f"environment: {env}\n", "promoted_from: build\n",
           f"source_commit: {source or 'null'}\n", "images:\n"]
    for b in builds:
        out += [f"  {b['component']}:\n", f"    image: {b['image']}\n",
                f"    digest: {b['digest']}\n"]
    out += ["pipelines: {}\n", "model_uri: null\n", "metrics: {}\n", "gates: []\n",
            "approval: null\n", "hold: null\n"]
    release = folder / "release.yaml"
    new = not release.exists()
    release.write_text("".join(out))
    if not commit:
        return
    if new:
        subprocess.run([*GIT, "add", "--", str(release)], cwd=root, check=True)
    message = f"promote {env}: release {rid}\n\nMlops-Release: {rid}\n"
    subprocess.run([*GIT, "commit", "-q", "-a", "--no-verify", "-m", message],
                   cwd=root, check=True)


if __name__ == "__main__":
    floor(sys.argv[1], sys.argv[2])
'''


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--components", type=common.at_least(1), default=200, metavar="N",
                   help="components (pinned images) in the promoted repository (default 200)")
    p.add_argument("--repeat", type=common.at_least(1), default=7, metavar="N",
                   help="timed runs per measurement, after one warm-up (default 7)")
    p.add_argument("--race-components", type=common.at_least(1), default=20, metavar="N",
                   help="components in the racers' repository (default 20)")
    p.add_argument("--rounds", type=common.at_least(1), default=3, metavar="N",
                   help="timed rounds of ten racers, after one warm-up round (default 3)")
    p.add_argument("--no-readme", action="store_true",
                   help="print only; leave benchmarks/README.md alone")
    args = p.parse_args(argv)
    if args.race_components > args.components:
        p.error("--race-components cannot exceed --components")
    return args


def preflight() -> list[str]:
    problems = []
    for tool in ("git", "docker-registry"):
        if not shutil.which(tool):
            problems.append(f"{tool} is not installed (run hack/setup.sh)")
    try:
        import mlops.cli  # noqa: F401
    except ImportError as exc:
        problems.append(f"cannot import mlops ({exc}); pip install -e .")
    return problems


# -- the registry: two small images per component, straight through the API ---


def _http(method: str, url: str, data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (127.0.0.1 only)
            resp.read()
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:300]
        raise BenchError(f"registry: {method} {url} -> HTTP {exc.code}: {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"registry: {method} {url}: {exc}") from None


def _push_blob(base: str, repository: str, blob: bytes) -> dict[str, object]:
    """A monolithic upload: POST to open it, PUT the bytes with their digest."""
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    status, headers = _http("POST", f"{base}/v2/{repository}/blobs/uploads/", data=b"")
    location = headers.get("Location")
    if status != 202 or not location:
        raise BenchError(f"registry: opening an upload to {repository} gave HTTP {status}")
    url = urllib.parse.urljoin(base + "/", location)
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
    status, _ = _http("PUT", url, data=blob,
                      headers={"Content-Type": "application/octet-stream"})
    if status != 201:
        raise BenchError(f"registry: uploading a blob to {repository} gave HTTP {status}")
    return {"size": len(blob), "digest": digest}


def _tiny_layer() -> tuple[bytes, str]:
    """(gzipped tar of one small file, its diff id), the same bytes every time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = b"mlops promote benchmark\n"
        info = tarfile.TarInfo("bench.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def push_images(registry: LocalRegistry, names: list[str]) -> dict[str, dict[str, str]]:
    """Two images per component (tags bench-a, bench-b); {variant: {name: digest}}.

    Each digest is read back from the registry (a HEAD of the tag and its
    Docker-Content-Digest), not computed here.
    """
    base = f"http://{registry.host}"
    layer, diff_id = _tiny_layer()
    digests: dict[str, dict[str, str]] = {v: {} for v in VARIANTS}
    for name in names:
        repository = f"{NAMESPACE}/{name}"
        layer_desc = _push_blob(base, repository, layer)
        for variant in VARIANTS:
            config = json.dumps({
                "architecture": "amd64", "os": "linux",
                "config": {"Labels": {"bench.component": name, "bench.variant": variant}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }, sort_keys=True).encode()
            config_desc = _push_blob(base, repository, config)
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": MANIFEST_V2,
                "config": {"mediaType": CONFIG_V1, **config_desc},
                "layers": [{"mediaType": LAYER_GZIP, **layer_desc}],
            }).encode()
            tag = f"bench-{variant}"
            status, _ = _http("PUT", f"{base}/v2/{repository}/manifests/{tag}", data=manifest,
                              headers={"Content-Type": MANIFEST_V2})
            if status != 201:
                raise BenchError(f"registry: PUT manifest {repository}:{tag} gave HTTP {status}")
            _, headers = _http("HEAD", f"{base}/v2/{repository}/manifests/{tag}",
                               headers={"Accept": MANIFEST_V2})
            digest = headers.get("Docker-Content-Digest", "")
            if not digest.startswith("sha256:"):
                raise BenchError(f"registry: {repository}:{tag} has no digest")
            digests[variant][name] = digest
    if any(digests["a"][n] == digests["b"][n] for n in names):
        raise BenchError("images A and B share a digest; every promotion must change all pins")
    return digests


def build_record(path: Path, source_commit: str, image_ns: str, names: list[str],
                 digests: dict[str, str], variant: str) -> Path:
    """A build record in the `mlops build --output` format."""
    builds = [{
        "component": name, "version": "0.1.0", "image": f"{image_ns}/{name}",
        "tags": ["0.1.0", f"bench-{variant}"], "digest": digests[name],
        "input_hash": hashlib.sha256(f"{name}:{variant}".encode()).hexdigest(),
        "built": True, "pushed": True, "status": "built",
    } for name in names]
    path.write_text(json.dumps({"source_commit": source_commit, "registry": image_ns,
                                "builds": builds}, indent=1) + "\n")
    return path


# -- git: a bare remote and a developer clone ---------------------------------


def git(cwd: Path, *args: str) -> str:
    return run(["git", *GIT_ID, *args], cwd=cwd)


def make_repo(base: Path, label: str, count: int, image_ns: str) -> tuple[Path, Path]:
    """(bare remote, clone) of a repository of `count` components and four environments."""
    remote, clone = base / f"{label}-remote.git", base / f"{label}-clone"
    run(["git", "init", "-q", "--bare", "-b", "main", str(remote)])
    clone.mkdir()
    (clone / "mlops.yaml").write_text(
        f"registry: {image_ns}\n"
        "environments:\n  - name: dev\n  - name: staging\n  - name: prod\n"
    )
    for i in range(count):
        name = f"c{i:03d}"
        folder = clone / "components" / name
        folder.mkdir(parents=True)
        (folder / "component.yaml").write_text(f"name: {name}\nversion: 0.1.0\n")
        (folder / "Dockerfile").write_text(DOCKERFILE)
    # This repository's environments: base whole (its kustomization lists its
    # resources), the overlays' kustomization.yaml only (no releases, no pipelines).
    shutil.copytree(common.REPO_ROOT / "environments" / "base", clone / "environments" / "base")
    for env in ("dev", "staging", "prod"):
        (clone / "environments" / env).mkdir(parents=True)
        shutil.copy(common.REPO_ROOT / "environments" / env / "kustomization.yaml",
                    clone / "environments" / env / "kustomization.yaml")
    git(clone, "init", "-q", "-b", "main")
    git(clone, "config", "user.name", "mlops bench")  # the identity promotions commit with
    git(clone, "config", "user.email", "bench@127.0.0.1")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", f"{count} benchmark components")
    git(clone, "remote", "add", "origin", str(remote))
    git(clone, "push", "-q", "origin", "main")
    git(clone, "branch", "-q", "--set-upstream-to=origin/main")
    return remote, clone


def commit_count(remote: Path) -> int:
    return int(run(["git", "rev-list", "--count", "refs/heads/main"], cwd=remote).strip())


# -- measurements -------------------------------------------------------------


@dataclass
class Setup:
    tmp: Path
    registry: LocalRegistry
    image_ns: str
    names: list[str]
    remote: Path
    clone: Path
    records: dict[str, Path]  # variant -> build record
    floor_clone: Path
    floor_remote: Path


class Alternator:
    """Hands out A, B, A, ... so that each promotion re-pins every image."""

    def __init__(self, records: dict[str, Path]) -> None:
        self.records = records
        self.n = 0

    def next(self) -> Path:
        record = self.records[VARIANTS[self.n % 2]]
        self.n += 1
        return record


def measure_split(name: str, prepare: Callable[[], object], fn: Callable[[], object],
                  repeat: int, note: str = "") -> Timing:
    """Like common.measure, with an untimed `prepare` before each run (and the warm-up)."""
    prepare()
    fn()
    timing = Timing(name, note=note)
    for _ in range(repeat):
        prepare()
        start = time.perf_counter()
        fn()
        timing.seconds.append(time.perf_counter() - start)
    return timing


def load_floor() -> Callable[..., None]:
    """FLOOR_SCRIPT's floor(), for in-process runs; a failed git commit is a BenchError."""
    namespace: dict[str, object] = {"__name__": "bench_floor"}
    exec(compile(FLOOR_SCRIPT, "<floor>", "exec"), namespace)  # noqa: S102 (our own text)
    floor = namespace["floor"]
    assert callable(floor)

    def call(*args: object, **kwargs: object) -> None:
        try:
            floor(*args, **kwargs)
        except subprocess.CalledProcessError as exc:
            raise BenchError(f"the floor's git exited {exc.returncode}") from None

    return call


def _quiet_main(argv: list[str]) -> int:
    import mlops.cli

    with open(os.devnull, "w") as devnull:
        with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            return mlops.cli.main(argv)


def measure_interleaved(
    specs: list[tuple[str, Callable[[], object], str]], repeat: int
) -> list[Timing]:
    """Like common.measure for several things at once, run round-robin.

    One warm-up of each, then `repeat` rounds of one run of each, so that load
    from other work on the machine falls on all of them alike and their ratios
    stay fair.
    """
    timings = [Timing(name, note=note) for name, _, note in specs]
    for _, fn, _ in specs:
        fn()
    for _ in range(repeat):
        for timing, (_, fn, _) in zip(timings, specs, strict=True):
            start = time.perf_counter()
            fn()
            timing.seconds.append(time.perf_counter() - start)
    return timings


def measure_promote(s: Setup, n: int) -> dict[str, Timing]:
    promoter = Alternator(s.records)  # shared: the remote alternates A, B, A, ...
    floor_records = Alternator(s.records)  # the floor clone alternates on its own

    def argv() -> list[str]:
        return ["promote", "--to", ENV, "--build", str(promoter.next()), "--repo", str(s.clone)]

    def in_process() -> None:
        code = _quiet_main(argv())
        if code != 0:
            raise BenchError(f"mlops.cli.main(promote) returned {code} in-process")

    import mlops.cli  # noqa: F401  once; the warm-up also imports the promote command

    floor_fn = load_floor()
    print(f"measuring: median of {n} runs after one warm-up each; promote and floor "
          "interleaved", flush=True)
    before = commit_count(s.remote)
    # Fresh processes run in the clone, as a user would run them (and so that
    # `python3 -c` cannot pick up a package from our own cwd).
    cli, inproc, floor_cli, floor_inproc = measure_interleaved([
        (f"mlops promote --to {ENV} --build A|B (fresh process)",
         lambda: run([sys.executable, "-m", "mlops", *argv()], cwd=s.clone, capture=False),
         ""),
        ("mlops.cli.main([promote, ...]) (in-process)", in_process,
         "after import and one warm-up"),
        ("floor: script edits + git commit (fresh process)",
         lambda: run([sys.executable, "-c", FLOOR_SCRIPT, str(s.floor_clone),
                      str(floor_records.next())], cwd=s.floor_clone, capture=False),
         "python3 -c, standard library only"),
        ("floor: script edits + git commit (in-process)",
         lambda: floor_fn(str(s.floor_clone), str(floor_records.next())), ""),
    ], n)
    gained = commit_count(s.remote) - before
    if gained != 2 * (n + 1):
        raise BenchError(f"the remote gained {gained} commits, not {2 * (n + 1)}: "
                         "not every promotion pinned a new release")
    results = {"cli": cli, "inproc": inproc, "floor_cli": floor_cli,
               "floor_inproc": floor_inproc}
    results.update(measure_breakdown(s, n, floor_fn, floor_records))
    return results


def measure_breakdown(s: Setup, n: int, floor_fn: Callable[..., object],
                      floor_records: Alternator) -> dict[str, Timing]:
    """The pieces of one promotion, each on its own (informational)."""
    from mlops import overlay
    from mlops import release as rel
    from mlops.commands import promote_steps as steps

    results: dict[str, Timing] = {}
    results["bare"] = common.measure(
        "python3 -c pass", lambda: run([sys.executable, "-c", "pass"], cwd=s.clone,
                                       capture=False),
        n, note="bare interpreter start-up",
    )
    results["startup"] = common.measure(
        "python3 start-up + the imports of a promotion",
        lambda: run([sys.executable, "-c", PROMOTE_IMPORTS], cwd=s.clone, capture=False),
        n, note="mlops.cli, commands.promote, builder (docker SDK), registry (requests)",
    )
    scratch = s.tmp / "clone-timing"

    def clone_like_workspace() -> None:
        run(["git", "clone", "--quiet", "--no-tags", "--single-branch", "--branch", "main",
             "--reference-if-able", str(s.clone), str(s.remote), str(scratch)])
        shutil.rmtree(scratch)

    results["clone"] = common.measure(
        "git clone of the remote + rm -r (as the workspace does)", clone_like_workspace, n,
        note="--reference-if-able the user's clone",
    )

    releases = {}
    for variant, path in s.records.items():
        record = json.loads(path.read_text())
        releases[variant] = rel.Release(
            source_commit=record["source_commit"],
            images={b["component"]: rel.Image(b["image"], b["digest"]) for b in record["builds"]},
        )
    results["heads"] = common.measure(
        f"{len(s.names)} registry HEAD checks (promote_steps.verify_digests)",
        lambda: steps.verify_digests(releases["a"]), n,
        note="a new client each run, as a promotion has",
    )

    results["raw_heads"] = common.measure(
        f"{len(s.names)} HEADs on one keep-alive connection (http.client)",
        lambda: raw_heads(s.registry.host, releases["a"]), n,
        note="the registry's own share of the checks",
    )

    texts = {"": overlay.kustomization_path(s.clone, ENV).read_text()}
    state = {"pins": ""}

    def edit_overlay() -> None:
        variant = "b" if state["pins"] == "a" else "a"
        pins = {k: (v.image, v.digest) for k, v in releases[variant].images.items()}
        texts[variant] = overlay.set_images(texts[state["pins"]], pins,
                                            overlay.display_path(ENV))
        state["pins"] = variant

    results["overlay"] = common.measure(
        f"overlay.set_images: re-pin {len(s.names)} images", edit_overlay, n,
        note="the kustomization edit alone, in memory",
    )
    record = rel.EnvRecord(ENV, releases["a"], "build")
    results["render"] = common.measure(
        "release.render: release.yaml text", lambda: rel.render(record), n,
        note="yaml.safe_dump",
    )
    results["push"] = measure_split(
        "git push of one promotion commit",
        lambda: floor_fn(str(s.floor_clone), str(floor_records.next())),
        lambda: run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], cwd=s.floor_clone),
        n, note="the floor's commit, to a bare remote of its own",
    )
    return results


def raw_heads(host: str, release: object) -> None:
    """HEAD every pinned manifest over one keep-alive connection: no client library."""
    import http.client

    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        for img in release.images.values():  # type: ignore[attr-defined]
            repository = img.image.split("/", 1)[1]
            conn.request("HEAD", f"/v2/{repository}/manifests/{img.digest}",
                         headers={"Accept": MANIFEST_V2})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise BenchError(f"registry: HEAD {img.ref} gave HTTP {resp.status}")
    finally:
        conn.close()


def check_floor_is_same_edit(s: Setup) -> bool:
    """The floor writes the two files exactly as mlops promote did for the same record.

    Run after the floor's timings, without committing: the floor clone may hold
    that record already.
    """
    load_floor()(str(s.floor_clone), str(s.records[_current_variant(s)]), commit=False)
    same = True
    for name in ("kustomization.yaml", "release.yaml"):
        theirs = run(["git", "show", f"refs/heads/main:environments/{ENV}/{name}"], cwd=s.remote)
        ours = (s.floor_clone / "environments" / ENV / name).read_text()
        if theirs != ours:
            first = next((a, b) for a, b in zip(theirs.splitlines() + [""],
                                                  ours.splitlines() + [""], strict=False)
                         if a != b)
            print(f"warning: the floor's {name} differs from what mlops promote wrote "
                  f"({len(ours)} against {len(theirs)} bytes); first difference: "
                  f"mlops {first[0]!r}, floor {first[1]!r}", flush=True)
            same = False
    return same


# -- ten racers ---------------------------------------------------------------


@dataclass
class Round:
    seconds: float
    codes: list[int]
    landed: int
    releases: int
    retries: int
    most_losses: int  # rejected pushes of the racer that lost most often


def backoff_ceiling(losses: int) -> float:
    """The most a racer can sleep after `losses` rejected pushes.

    mlops retries with full jitter (mlops/retry.py): each wait is uniform between
    0 and min(0.1 s * 2**k, 2 s), so only the ceiling is fixed.
    """
    return sum(min(BACKOFF_INITIAL * 2**k, BACKOFF_MAX) for k in range(losses))


def race_round(base: Path, remote: Path, clone: Path, records: list[Path], round_no: int,
               offset: int) -> Round:
    metrics = []
    for i in range(RACERS):
        path = base / f"metrics-{round_no}-{i}.json"
        # accuracy 0.90 + i/1000, shifted each round so that no racer repeats a release
        path.write_text(json.dumps({"accuracy": 0.9 + (offset + i) / 1000, "f1": 0.94}))
        metrics.append(path)
    before = run(["git", "rev-parse", "refs/heads/main"], cwd=remote).strip()
    argvs = [[sys.executable, "-m", "mlops", "promote", "--to", ENV, "--build", str(records[i]),
              "--metrics", str(metrics[i]), "--repo", str(clone)] for i in range(RACERS)]
    logs = [base / f"racer-{round_no}-{i}.log" for i in range(RACERS)]
    handles = [open(log, "wb") for log in logs]  # closed below
    procs: list[subprocess.Popen] = []
    start = time.perf_counter()
    try:
        for argv, handle in zip(argvs, handles, strict=True):
            procs.append(subprocess.Popen(argv, cwd=clone, stdout=subprocess.DEVNULL,
                                          stderr=handle))
        codes = [p.wait(timeout=RACE_TIMEOUT) for p in procs]
    except subprocess.TimeoutExpired:
        raise BenchError(f"a racer took over {RACE_TIMEOUT}s") from None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for handle in handles:
            handle.close()
    seconds = time.perf_counter() - start
    errors = [log.read_text(errors="replace") for log in logs]
    commits = run(["git", "rev-list", f"{before}..refs/heads/main"], cwd=remote).split()
    messages = run(["git", "log", "--format=%(trailers:key=Mlops-Release,valueonly)",
                    f"{before}..refs/heads/main"], cwd=remote)
    releases = {line.strip() for line in messages.splitlines() if line.strip()}
    losses = [e.count("the remote moved on") for e in errors]
    if any(codes):
        first = next(e for c, e in zip(codes, errors, strict=True) if c)
        print(f"warning: racers exited {codes}; first error: {first.strip()[-300:]}", flush=True)
    return Round(seconds, codes, len(commits), len(releases), sum(losses), max(losses))


def measure_race(s: Setup, count: int, rounds: int) -> tuple[list[Round], Timing]:
    """Ten racers, one warm-up round then `rounds` timed rounds, on a repo of `count`."""
    names = s.names[:count]
    remote, clone = make_repo(s.tmp, "race", count, s.image_ns)
    head = run(["git", "rev-parse", "HEAD"], cwd=clone).strip()
    digests = {v: {n: d for n, d in _record_digests(s.records[v]).items() if n in names}
               for v in VARIANTS}
    records = [build_record(s.tmp / f"race-build-{i}.json", head, s.image_ns, names,
                            digests[VARIANTS[i % 2]], VARIANTS[i % 2]) for i in range(RACERS)]
    print(f"racing: {RACERS} promoters at once on a {count}-component repository, "
          f"{rounds} rounds after one warm-up round", flush=True)
    results = []
    for round_no in range(rounds + 1):
        r = race_round(s.tmp, remote, clone, records, round_no, offset=round_no * RACERS)
        what = "warm-up" if round_no == 0 else f"round {round_no}"
        print(f"  {what}: {fmt_seconds(r.seconds)}, exit codes {sorted(set(r.codes))}, "
              f"{r.landed} commits, {r.releases} distinct releases, "
              f"{r.retries} recomputations after a rejected push (at most {r.most_losses} "
              "for one racer)", flush=True)
        results.append(r)
    timed = results[1:]
    timing = Timing(f"{RACERS} racers, all landed (wall time of the round)",
                    [r.seconds for r in timed],
                    note=f"{count} components; fresh processes started together")
    return timed, timing


def _record_digests(path: Path) -> dict[str, str]:
    return {b["component"]: b["digest"] for b in json.loads(path.read_text())["builds"]}


# -- profile ------------------------------------------------------------------


def profile_promote(s: Setup) -> tuple[str, float]:
    """One cProfile run of the in-process promotion: (the top functions as text, total s)."""
    variant = "b" if _current_variant(s) == "a" else "a"
    argv = ["promote", "--to", ENV, "--build", str(s.records[variant]), "--repo", str(s.clone)]
    prof = cProfile.Profile()
    prof.enable()
    code = _quiet_main(argv)
    prof.disable()
    if code != 0:
        raise BenchError(f"the profiled promotion returned {code}")
    stats = pstats.Stats(prof)
    total = max(v[3] for v in stats.stats.values())  # type: ignore[attr-defined]
    text = (
        f"profile of one in-process promotion ({total * 1e3:.0f} ms under cProfile, "
        f"main thread; subprocesses count as the time waited for them)\n\n"
        f"top {PROFILE_TOP} by cumulative time:\n"
        f"{common.profile_table(stats, 'cumulative', PROFILE_TOP)}\n\n"
        f"top {PROFILE_TOP_OWN} by own time:\n"
        f"{common.profile_table(stats, 'tottime', PROFILE_TOP_OWN)}"
    )
    return text, total


def _current_variant(s: Setup) -> str:
    """The record ("a" or "b") whose digests the remote's dev release pins now."""
    pinned = run(["git", "show", f"refs/heads/main:environments/{ENV}/release.yaml"],
                 cwd=s.remote)
    a_digest = next(iter(_record_digests(s.records["a"]).values()))
    return "a" if a_digest in pinned else "b"


# -- report -------------------------------------------------------------------


def ratio_rows(res: dict[str, Timing]) -> list[list[str]]:
    cli, inproc = res["cli"].median, res["inproc"].median
    floor_cli, floor_in = res["floor_cli"].median, res["floor_inproc"].median
    return [
        common.target_row("promote / floor (fresh processes)", cli / floor_cli,
                          f"≤ {FLOOR_TARGET:g}× (DESIGN.md)", cli / floor_cli <= FLOOR_TARGET),
        common.target_row("promote / floor (in-process)", inproc / floor_in,
                          f"≤ {FLOOR_TARGET:g}× (the work without start-up)",
                          inproc / floor_in <= FLOOR_TARGET),
        ["promote (fresh process) / floor (in-process)", fmt_ratio(cli / floor_in), "—", "info"],
    ]


def race_rows(rounds: list[Round], timing: Timing, count: int) -> list[list[str]]:
    landed = all(r.codes == [0] * RACERS and r.landed == RACERS and r.releases == RACERS
                 for r in rounds)
    return [[
        f"{RACERS} racers on one remote ({count} components)",
        "; ".join(f"{r.landed}/{RACERS} landed" for r in rounds),
        "all ten land (DESIGN.md)",
        "met" if landed else "NOT met",
    ], [
        "total wall time of a round (median)",
        f"{fmt_seconds(timing.median)} (min {fmt_seconds(timing.min)}, "
        f"max {fmt_seconds(timing.max)})",
        "reported",
        "info",
    ], [
        "recomputations after a rejected push, per round",
        ", ".join(str(r.retries) for r in rounds),
        "—",
        "info",
    ], [
        "most rejected pushes of one racer, per round",
        ", ".join(str(r.most_losses) for r in rounds),
        "—",
        "info",
    ], [
        "its backoff sleep, at most (full jitter)",
        ", ".join(fmt_seconds(backoff_ceiling(r.most_losses)) for r in rounds),
        "—",
        "info",
    ]]


class OtherWork:
    """The share of all CPUs that work other than this benchmark used over a window.

    /proc/stat's busy time, less our own CPU time (this process, its waited-for
    children: mlops, git, racers) and the registry's. Linux only; None elsewhere.
    """

    def __init__(self, registry_pid: int | None) -> None:
        self.registry_pid = registry_pid
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start: tuple[int, int, float] | None = None

    def _ours(self) -> float:
        t = os.times()
        seconds = t.user + t.system + t.children_user + t.children_system
        if self.registry_pid:
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{self.registry_pid}/stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                seconds += (int(fields[11]) + int(fields[12])) / self.hz  # utime, stime
        return seconds

    def begin(self) -> None:
        try:
            total, idle = common._cpu_times()
        except (OSError, ValueError, IndexError):
            return
        self.start = (total, idle, self._ours())

    def share(self) -> float | None:
        if self.start is None:
            return None
        try:
            total, idle = common._cpu_times()
        except (OSError, ValueError, IndexError):
            return None
        total0, idle0, ours0 = self.start
        all_seconds = (total - total0) / self.hz
        busy = all_seconds - (idle - idle0) / self.hz
        if all_seconds <= 0:
            return None
        return max(busy - (self._ours() - ours0), 0.0) / all_seconds


def _busy(before: float | None, during: float | None) -> str:
    if before is None and during is None:
        return "CPU use by other work unknown"
    parts = []
    if before is not None:
        parts.append(f"{before:.0%} just before measuring")
    if during is not None:
        parts.append(f"{during:.0%} on average while measuring")
    worst = max(v for v in (before, during) if v is not None)
    noisy = " (busy: the figures are noisy)" if worst > BUSY else ""
    return f"CPUs busy with other work: {', '.join(parts)}{noisy}"


def report(res: dict[str, Timing], rounds: list[Round], race: Timing, args: argparse.Namespace,
           setup_seconds: float, same_edit: bool, profile: str, revision_at_start: str,
           busy: float | None, during: float | None) -> str:
    main_rows = common.timing_rows([res[k] for k in ("cli", "inproc", "floor_cli",
                                                      "floor_inproc")])
    parts = ["bare", "startup", "clone", "heads", "raw_heads", "overlay", "render", "push"]
    part_rows = common.timing_rows([res[k] for k in parts])
    inproc = res["inproc"].median
    pieces = sum(res[k].median for k in ("clone", "heads", "overlay", "render", "push"))
    rest = inproc - pieces
    part_rows.append(["rest of the in-process promotion (derived)",
                      fmt_seconds(rest) if rest > 0 else "—", "", "", "",
                      "in-process median minus clone, checks, overlay, render, push"
                      + ("" if rest > 0 else f": the pieces, each timed alone, add up to "
                         f"{fmt_seconds(pieces)}, more than the whole")])
    shares = (f"The overlay edit alone is {res['overlay'].median / inproc:.0%} of the "
              f"in-process promotion; the fresh process adds "
              f"{fmt_seconds(max(res['cli'].median - inproc, 0.0))} over the in-process run "
              f"(start-up and imports measure {fmt_seconds(res['startup'].median)}).")
    ratios = ratio_rows(res)
    races = race_rows(rounds, race, args.race_components)
    race_table = common.timing_rows([race])
    print()
    print(common.text_table(common.TIMING_HEADERS, main_rows))
    print()
    print("breakdown (each piece on its own):")
    print(common.text_table(common.TIMING_HEADERS, part_rows))
    print(shares)
    print()
    print(common.text_table(common.TARGET_HEADERS, ratios))
    print()
    print(common.text_table(common.TIMING_HEADERS, race_table))
    print()
    print(common.text_table(("what", "measured", "target", "result"), races))
    print()
    print(f"floor writes the same bytes as mlops promote: {'yes' if same_edit else 'NO'}")
    for row in [*ratios[:2], races[0]]:
        print(f"target {row[0]} {row[2]}: {row[3]} ({row[1]})")
    print()
    print(profile)

    m = common.machine()
    revision = common.project_revision()
    if revision != revision_at_start:
        revision = f"{revision_at_start}, which changed to {revision} during the run"
    git_version = common.tool_version(["git", "--version"]).removeprefix("git version ")
    return f"""### Promotion (`mlops promote`, {args.components} pinned images into one overlay)

Targets (DESIGN.md, "Performance targets"): promotion of {args.components} pinned
images into one overlay within {FLOOR_TARGET:g}× of the floor (the same file edits
made by a script plus `git commit`); ten promoters racing on one remote all
land, and the total time is reported.

- Date: {m['date']}
- Code: `mlops/` as of commit {revision}
- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']},
  git {git_version}; {_busy(busy, during)}
- Reproduce: `{common.command_line(__file__)}` (or `make bench`)
- Method: median of {args.repeat} runs after one warm-up; the four measurements of
  the first table run interleaved, round-robin. A generated repository of
  {args.components} components (`component.yaml` and a 3-line Dockerfile each; no
  `pipelines/`, so no kfp compile), a bare remote, and a local registry holding
  two images per component (A and B, pushed through the registry API in
  {setup_seconds:.0f} s, not measured). Runs alternate the build records A and B,
  so each promotion re-pins all {args.components} images and commits and pushes a
  new release to `{ENV}`; each one also clones the remote and checks the
  {args.components} digests in the registry. The floor is a standard-library
  script that writes `environments/{ENV}/kustomization.yaml` and `release.yaml`
  (byte for byte what `mlops promote` wrote: {'yes' if same_edit else 'NO'})
  and runs `git commit -a`, in a plain clone; it neither clones, checks the
  registry nor pushes. Fresh processes are `{Path(sys.executable).name} -m mlops`
  and `{Path(sys.executable).name} -c FLOOR`, so both pay the same interpreter
  start-up.
- Racers: {RACERS} `mlops promote --to {ENV} --build RECORD_i --metrics METRICS_i`
  processes started together on a repository of {args.race_components} components
  (records A/B alternating, accuracy 0.90 + i/1000 shifted by 0.010 per round, so
  ten distinct releases), {args.rounds} rounds after one warm-up round; each must
  exit 0 and the remote gain exactly ten commits of ten different releases.

{common.md_table(common.TIMING_HEADERS, main_rows)}

Where a promotion's time goes: each piece measured on its own.

{common.md_table(common.TIMING_HEADERS, part_rows)}

{shares}

{common.md_table(common.TARGET_HEADERS, ratios)}

{common.md_table(common.TIMING_HEADERS, race_table)}

{common.md_table(("what", "measured", "target", "result"), races)}
"""


# -- main ---------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: registry, temp dir


def setup(tmp: Path, registry: LocalRegistry, count: int) -> tuple[Setup, float]:
    image_ns = f"{registry.host}/{NAMESPACE}"
    names = [f"c{i:03d}" for i in range(count)]
    start = time.perf_counter()
    print(f"set-up: pushing 2 images each for {count} components to {registry.host} "
          "(not measured)", flush=True)
    digests = push_images(registry, names)
    pushed = time.perf_counter() - start
    remote, clone = make_repo(tmp, "promote", count, image_ns)
    head = run(["git", "rev-parse", "HEAD"], cwd=clone).strip()
    records = {v: build_record(tmp / f"build-{v}.json", head, image_ns, names, digests[v], v)
               for v in VARIANTS}
    # The floor's plain clone, pushing (only in the push row) to a bare copy of its own.
    floor_remote = tmp / "floor-remote.git"
    run(["git", "clone", "-q", "--bare", str(remote), str(floor_remote)])
    floor_clone = tmp / "floor-clone"
    run(["git", "clone", "-q", str(floor_remote), str(floor_clone)])
    print(f"set-up: registry filled in {pushed:.1f}s, repositories ready", flush=True)
    return Setup(tmp, registry, image_ns, names, remote, clone, records, floor_clone,
                 floor_remote), pushed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.environ.pop("MLOPS_REGISTRY", None)  # the generated mlops.yaml names the registry
    problems = preflight()
    if problems:
        for p in problems:
            print(f"promote: cannot run: {p}", file=sys.stderr)
        return 1
    revision = common.project_revision()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-promote-"))
    registry = LocalRegistry(tmp / "registry")
    try:
        registry.start()
        s, setup_seconds = setup(tmp, registry, args.components)
        busy = common.cpu_busy()
        if busy is not None and busy > BUSY:
            print(f"note: the CPUs were {busy:.0%} busy with other work before measuring; "
                  "the figures will be noisy", flush=True)
        start = time.perf_counter()
        others = OtherWork(registry.proc.pid if registry.proc else None)
        others.begin()
        results = measure_promote(s, args.repeat)
        same_edit = check_floor_is_same_edit(s)
        profile, _ = profile_promote(s)
        rounds, race = measure_race(s, args.race_components, args.rounds)
        during = others.share()
        print(f"measured in {time.perf_counter() - start:.0f}s; {_busy(busy, during)}",
              flush=True)
        section = report(results, rounds, race, args, setup_seconds, same_edit, profile,
                         revision, busy, during)
        if not args.no_readme:
            common.write_section(SECTION, section)
            print(f"\nwrote the {SECTION} section of {common.README}")
    except BenchError as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
