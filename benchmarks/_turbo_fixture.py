"""The Turborepo comparison's set-up: turbo itself, equivalent workspaces, a seeded registry.

Not measured. `install_turbo` puts one pinned turbo release into the run's temp
dir (`npm install --prefix`, nothing global). `make_workspace` writes the same
components as `_build_plan_fixture.make_repo`, each also an npm workspace
package whose `build` script turbo runs, and `fill_cache` runs that build once
so that turbo's local cache holds every task. On the mlops side,
`seed_registry` pushes one tiny image per component under its `ih-` tag through
the Distribution HTTP API (where `mlops build` would have pushed a real one),
and one dry run finds them all and fills the local cache. Both tools then
answer a dry run with nothing changed from their caches. `change_one` commits
the same one-line edit to one component in either repository.
Used by benchmarks/build_plan_turbo.py.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from _build_plan_fixture import component_files
from common import GIT_ID, BenchError, run

TURBO_VERSION = "2.11.13"  # the release measured; bump it here, nowhere else
# No telemetry, no update check: the only traffic of a measured run stays on this machine.
TURBO_ENV = {"TURBO_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1",
             "TURBO_NO_UPDATE_NOTIFIER": "1"}
TURBO_JSON = {"$schema": "https://turborepo.com/schema.json",
              # $TURBO_DEFAULT$: every file git tracks in the package's folder, which is
              # what mlops hashes for a component without depends_on
              "tasks": {"build": {"inputs": ["$TURBO_DEFAULT$"], "outputs": []}}}
CHANGED = "components/c000/src/util.py"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"


# -- turbo ----------------------------------------------------------------------


def install_turbo(prefix: Path) -> Path:
    """turbo@TURBO_VERSION under `prefix`; the path of its native binary (not the node launcher)."""
    run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
         "--loglevel=error", f"turbo@{TURBO_VERSION}"], timeout=600)
    found = sorted(prefix.glob("node_modules/@turbo/*/bin/turbo"))
    if not found:
        raise BenchError(f"npm installed turbo@{TURBO_VERSION} without a native binary "
                         "for this platform (@turbo/<os>-<arch>)")
    return found[0]


def turbo_environ() -> dict[str, str]:
    return {**os.environ, **TURBO_ENV}


def make_workspace(ws: Path, count: int) -> None:
    """An npm workspace of `count` packages with the files of make_repo's components,
    a lockfile (made offline: the packages depend on nothing) and one commit."""
    npm_version = run(["npm", "--version"]).strip()
    _write(ws / "package.json", json.dumps({
        "name": "bench", "private": True, "packageManager": f"npm@{npm_version}",
        "workspaces": ["components/*"]}, indent=2) + "\n")
    _write(ws / "turbo.json", json.dumps(TURBO_JSON, indent=2) + "\n")
    _write(ws / ".gitignore", ".turbo/\nnode_modules/\n")
    for i in range(count):
        name = f"c{i:03d}"
        files = {**component_files(i, name), "package.json": json.dumps({
            "name": name, "version": "0.1.0", "private": True,
            "scripts": {"build": "true"}}, indent=2) + "\n"}
        for rel, text in files.items():
            _write(ws / "components" / name / rel, text)
    run(["npm", "install", "--package-lock-only", "--offline", "--no-audit", "--no-fund",
         "--loglevel=error"], cwd=ws, timeout=600)
    git = ["git", *GIT_ID]
    run([*git, "init", "-q", "-b", "main"], cwd=ws)
    run([*git, "add", "-A"], cwd=ws)
    run([*git, "commit", "-q", "-m", f"{count} benchmark packages"], cwd=ws)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def turbo_dry_argv(turbo: Path, ws: Path) -> list[str]:
    return [str(turbo), "run", "build", "--dry=json", "--cwd", str(ws)]


def cache_statuses(turbo: Path, ws: Path) -> dict[str, str]:
    """Task id -> HIT or MISS, as turbo's dry run reports them."""
    doc = json.loads(run(turbo_dry_argv(turbo, ws), env=turbo_environ()))
    return {t["taskId"]: t["cache"]["status"] for t in doc["tasks"]}


def fill_cache(turbo: Path, ws: Path, count: int, jobs: int) -> None:
    """One real `turbo run build`, so that every task is in turbo's local cache."""
    run([str(turbo), "run", "build", "--output-logs=none", f"--concurrency={jobs}",
         "--cwd", str(ws)], env=turbo_environ(), timeout=3600)
    check_turbo(turbo, ws, count, changed=())


def check_turbo(turbo: Path, ws: Path, count: int, changed: tuple[str, ...]) -> None:
    """Turbo's dry run misses exactly the `changed` packages' builds, and has all the others."""
    statuses = cache_statuses(turbo, ws)
    misses = sorted(t for t, s in statuses.items() if s != "HIT")
    if len(statuses) != count or misses != sorted(f"{c}#build" for c in changed):
        raise BenchError(f"turbo's dry run is not the state measured: {len(statuses)} tasks, "
                         f"{collections.Counter(statuses.values())}, misses {misses[:3]}")


# -- mlops ----------------------------------------------------------------------


def seed_registry(cli: str, repo: Path, registry_host: str) -> None:
    """Every component's `ih-` tag in the registry, then one dry run that finds them all
    (and so fills the dry run's local cache, as a real build would have)."""
    doc = json.loads(run([cli, "build", "--dry-run", "--json", "--repo", str(repo)]))
    base = f"http://{registry_host}"
    for item in doc["plan"]:
        repository = item["image"].split("/", 1)[1]
        tag = next(t for t in item["tags"] if t.startswith("ih-"))
        _push_image(base, repository, tag, item["component"])
    run([cli, "build", "--dry-run", "--repo", str(repo)], capture=False)


def _push_image(base: str, repository: str, tag: str, label: str) -> None:
    """A manifest with one config blob and no layer: enough for a tag to resolve."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": []}, "config": {"Labels": {"bench": label}}}).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    location = _http("POST", f"{base}/v2/{repository}/blobs/uploads/", b"", {})["Location"]
    url = urllib.parse.urljoin(base + "/", location)
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
    _http("PUT", url, config, {"Content-Type": "application/octet-stream"})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V2, "layers": [],
                           "config": {"mediaType": CONFIG_V1, "size": len(config),
                                      "digest": digest}}).encode()
    _http("PUT", f"{base}/v2/{repository}/manifests/{tag}", manifest,
          {"Content-Type": MANIFEST_V2})


def _http(method: str, url: str, data: bytes, headers: dict[str, str]) -> dict[str, str]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (127.0.0.1 only)
            resp.read()
            return dict(resp.headers)
    except (urllib.error.URLError, OSError) as exc:
        raise BenchError(f"registry: {method} {url}: {exc}") from None


def check_plan(cli: str, repo: Path, count: int, changed: tuple[str, ...]) -> None:
    """mlops' dry run builds exactly the `changed` components (asking the registry) and
    reuses every other one from its local cache."""
    doc = json.loads(run([cli, "build", "--dry-run", "--json", "--repo", str(repo)]))
    plan = {p["component"]: p for p in doc["plan"]}
    builds = sorted(n for n, p in plan.items() if p["action"] != "reuse")
    cached = sum("(local cache)" in p["reason"] for p in plan.values())
    if len(plan) != count or builds != sorted(changed) or cached != count - len(changed):
        raise BenchError(f"mlops' dry run is not the state measured: {len(plan)} planned, "
                         f"building {builds[:3]}, {cached} from the local cache")


# -- both -----------------------------------------------------------------------


def change_one(repo: Path) -> str:
    """Commit one edited line in CHANGED; the component's name."""
    path = repo / CHANGED
    path.write_text(path.read_text() + "# changed\n")
    git = ["git", *GIT_ID]
    run([*git, "commit", "-q", "-m", "one change", "--", CHANGED], cwd=repo)
    return CHANGED.split("/")[1]
