"""The promotion benchmark's set-up: a registry of small images, a repository, build records.

Not measured. Two images per component (A and B: one tiny layer, configs that
differ) go to a registry on 127.0.0.1 straight through the Distribution HTTP
API (no docker build); a bare git remote and a clone hold the generated
components and the environments; the build records name the images by the
digests the registry reports. Used by benchmarks/promote.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import common
from common import DOCKERFILE, GIT_ID, BenchError, LocalRegistry, run

from mlops.inputs import ih_tag

NAMESPACE = "bench"
ENV = "dev"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
VARIANTS = ("a", "b")
# Each component's sources and tests (a clone checks them out; a promotion reads none).
SOURCES = {
    "src/main.py": "from util import greet\n\ngreet('{name}')\n",
    "src/util.py": "def greet(who):\n    print('hello from', who, {i})\n",
    "tests/test_main.py": "def test_{i}():\n    assert '{name}'\n",
}


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
            # and under the record's ih- tag: promote binds a build record to what the
            # registry serves there (mlops.imagecheck), as `mlops build` would have pushed it
            for each in (tag, ih_tag(input_hash(name, variant))):
                status, _ = _http("PUT", f"{base}/v2/{repository}/manifests/{each}",
                                  data=manifest, headers={"Content-Type": MANIFEST_V2})
                if status != 201:
                    raise BenchError(f"registry: PUT manifest {repository}:{each} gave HTTP "
                                     f"{status}")
            _, headers = _http("HEAD", f"{base}/v2/{repository}/manifests/{tag}",
                               headers={"Accept": MANIFEST_V2})
            digest = headers.get("Docker-Content-Digest", "")
            if not digest.startswith("sha256:"):
                raise BenchError(f"registry: {repository}:{tag} has no digest")
            digests[variant][name] = digest
    if any(digests["a"][n] == digests["b"][n] for n in names):
        raise BenchError("images A and B share a digest; every promotion must change all pins")
    return digests


def input_hash(name: str, variant: str) -> str:
    """A stand-in input hash, one per component and variant."""
    return hashlib.sha256(f"{name}:{variant}".encode()).hexdigest()


def build_record(path: Path, source_commit: str, image_ns: str, names: list[str],
                 digests: dict[str, str], variant: str) -> Path:
    """A build record in the `mlops build --output` format."""
    builds = [{
        "component": name, "version": "0.1.0", "image": f"{image_ns}/{name}",
        "tags": ["0.1.0", f"bench-{variant}"], "digest": digests[name],
        "input_hash": input_hash(name, variant),
        "built": True, "pushed": True, "status": "built",
    } for name in names]
    path.write_text(json.dumps({"source_commit": source_commit, "registry": image_ns,
                                "builds": builds}, indent=1) + "\n")
    return path


# -- git: a bare remote and a developer clone ---------------------------------


def git(cwd: Path, *args: str) -> str:
    return run(["git", *GIT_ID, *args], cwd=cwd)


def make_repo(base: Path, label: str, count: int, image_ns: str) -> tuple[Path, Path]:
    """(bare remote, clone) of a repository of `count` components (component.yaml,
    Dockerfile, two sources and a test each) and four environments."""
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
        for rel, text in SOURCES.items():  # what a real component folder holds besides
            (folder / rel).parent.mkdir(exist_ok=True)
            (folder / rel).write_text(text.format(name=name, i=i))
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


# -- the whole set-up ---------------------------------------------------------


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


def record_digests(path: Path) -> dict[str, str]:
    return {b["component"]: b["digest"] for b in json.loads(path.read_text())["builds"]}
