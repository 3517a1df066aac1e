"""The repository's own four components, built for real (the slowest build test)."""

from __future__ import annotations

import json

import pytest

from mlops.adapters.registry import Registry
from tests.conftest import mlops_yaml, reference_files

pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.slow]

REFERENCE = {"preprocess", "train", "evaluate", "serve"}


def image_config(host: str, repository: str, digest: str) -> dict:
    """The pushed image's config (User, Labels, ...), read from the registry by digest."""
    client = Registry(host)
    manifest = json.loads(client.get_manifest(repository, digest)[0])
    blob = client.get_blob(repository, manifest["config"]["digest"], 1 << 20)
    return json.loads(blob)["config"]


def test_reference_components_build_push_and_then_no_op(project, registry, tmp_path):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **reference_files()})
    out = tmp_path / "build.json"

    first = proj.run("build", "--output", str(out))
    assert first.code == 0, first.err
    record = json.loads(out.read_text())
    builds = {b["component"]: b for b in record["builds"]}
    assert set(builds) == REFERENCE
    repo_ns = ns.split("/", 1)[1]
    for name, entry in builds.items():
        assert entry["built"] and entry["pushed"], name
        assert server.digest(f"{repo_ns}/{name}", entry["tags"][-1]) == entry["digest"]
        assert server.digest(f"{repo_ns}/{name}", "0.1.0") == entry["digest"]
        config = image_config(server.host, f"{repo_ns}/{name}", entry["digest"])
        assert config["User"] == "65532", name  # numeric: runAsNonRoot can verify it
        assert config["Labels"]["org.opencontainers.image.version"] == "0.1.0"
        assert config["Labels"]["org.opencontainers.image.revision"] == record["source_commit"]

    second = proj.run("build", "--json")
    assert second.code == 0, second.err
    assert {b["component"]: b["built"] for b in second.json["builds"]} == dict.fromkeys(
        REFERENCE, False)

    train_src = proj.path / "components/train/src/train/cli.py"
    train_src.write_text(train_src.read_text() + "\n# a harmless change\n")
    proj.commit("touch train")
    third = proj.run("build", "--json")
    assert third.code == 0, third.err
    assert {b["component"] for b in third.json["builds"] if b["built"]} == {"train"}
