"""What a build plan loads (issue 17: `mlops build --dry-run` against Turborepo's, measured
by benchmarks/build_plan_turbo.py; no timing is asserted here).

A dry run whose every image is in the local cache asks the registry nothing, so
it loads no HTTP library, no YAML writer, neither the build nor the signing
service, and starts no threads. Its plan is the same as the full import's. Repeated,
it is answered from the memo of the last one, which loads less again (no hash library
and no JSON either).
"""

from __future__ import annotations

import json
import subprocess
import sys

from mlops.adapters.registry import Registry
from mlops.names import split_image
from mlops.services.planmemo import MEMO
from tests.conftest import mlops_yaml, tiny_component

CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
NOT_FOR_A_CACHED_PLAN = ("requests", "urllib3", "yaml", "ruamel", "docker", "git", "kfp",
                         "kubernetes", "tenacity", "jsonschema", "concurrent",
                         "mlops.adapters.registry", "mlops.adapters.transport",
                         "mlops.adapters.safeyaml", "mlops.adapters.builder", "mlops.release",
                         "mlops.services.buildrun", "mlops.services.buildsign", "mlops.labels",
                         # the environments of a cached, validated mlops.yaml wait until asked
                         "mlops.envconfig", "mlops.canaryconfig",
                         # records are mlops.records: defining them compiles nothing
                         "dataclasses", "inspect",
                         # a plan writes no build context and waits on no queue
                         "tarfile", "queue")
# An answer from the memo of the last dry run (mlops.services.planmemo) reads no spec,
# no configuration and no registry client.
NOT_FOR_A_MEMO_ANSWER = ("mlops.components", "mlops.config", "mlops.adapters.yamlio",
                         "mlops.schema", "mlops.names", "mlops.services.buildplan",
                         "mlops.services.registries", "mlops.links", "mlops.threadmap",
                         "json", "hashlib")
PROBE = """
import sys
import mlops.cli
code = mlops.cli.main(["build", "--dry-run", "--repo", sys.argv[1]])
print("--- modules:", code, *sys.modules)
"""


def push_tag(image: str, tag: str) -> None:
    """A tiny image (one config blob, no layer) under `image:tag`."""
    host, repository = split_image(image)
    client = Registry(host)
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    digest = client.put_blob(repository, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "layers": [],
                           "config": {"mediaType": CONFIG, "size": len(config),
                                      "digest": digest}}).encode()
    client.put_manifest(repository, tag, manifest, MANIFEST)


def test_a_plan_from_the_local_cache_loads_no_sdk(project, registry):
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("alpha"),
                    **tiny_component("beta")})
    for item in proj.run("build", "--dry-run", "--json").json["plan"]:
        push_tag(item["image"], next(t for t in item["tags"] if t.startswith("ih-")))
    assert proj.run("build", "--dry-run").code == 0  # finds both: the cache learns them

    memo = proj.path / ".git" / MEMO
    memo.unlink(missing_ok=True)  # this dry run plans
    assert _not_loaded(proj, NOT_FOR_A_CACHED_PLAN) == []
    assert memo.is_file()  # and the next one answers from the memo, loading still less
    assert _not_loaded(proj, NOT_FOR_A_CACHED_PLAN + NOT_FOR_A_MEMO_ANSWER) == []


def _not_loaded(proj, names: tuple[str, ...]) -> list[str]:
    """The modules among `names` that a fresh dry run loaded; its plan checked."""
    proc = subprocess.run([sys.executable, "-c", PROBE, str(proj.path)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    plan, _, rest = proc.stdout.rpartition("--- modules:")
    code, *modules = rest.split()
    assert code == "0"
    assert plan.count("already in registry (local cache)") == 2
    assert "0 to build, 2 to reuse" in plan
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_a_plan_that_asks_the_registry_still_plans(project, registry):
    """The lazy imports load what a lookup needs: one component not in the cache."""
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("alpha")})
    proc = subprocess.run([sys.executable, "-m", "mlops", "build", "--dry-run", "--json",
                           "--repo", str(proj.path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (item,) = json.loads(proc.stdout)["plan"]
    assert item["action"] == "build"
    assert item["reason"].startswith("no image tagged ih-") and item["reason"].endswith(
        "in registry")
