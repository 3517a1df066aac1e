"""The OCI labels `mlops build` puts on an image, read back from the registry.

Real Docker Engine and registry, one tiny component. The pushed image's config
blob is fetched with plain HTTP (not mlops's registry client), so what is
checked is what a puller gets.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request

import pytest

from tests.conftest import mlops_yaml, tiny_component
from tests.support.services import MANIFEST_ACCEPT

pytestmark = pytest.mark.usefixtures("docker_engine")

PREFIX = "org.opencontainers.image."
TOKEN = "ghp_labelSecret7Qz9"  # a git token, as CI checkouts put it in the remote URL
REMOTE = f"https://ci-bot:{TOKEN}@git.example.test/acme/ml.git"
# A committer time far from the wall clock: a `created` taken from `now` cannot match it.
COMMITTED = 981173106  # 2001-02-03T04:05:06Z


def pushed_config(host: str, repository: str, digest: str) -> bytes:
    """The raw config blob of the image the registry serves under `digest`."""
    req = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{digest}",
                                 headers={"Accept": MANIFEST_ACCEPT})
    with urllib.request.urlopen(req, timeout=10) as resp:
        manifest = json.load(resp)
    config = manifest["config"]["digest"]
    with urllib.request.urlopen(f"http://{host}/v2/{repository}/blobs/{config}",
                                timeout=10) as resp:
        return resp.read()


def build_labels(proj, host: str, repository: str, *args: str) -> tuple[dict, bytes]:
    result = proj.run("build", "--json", *args)
    assert result.code == 0, result.err
    (entry,) = result.json["builds"]
    assert entry["built"] is True, entry
    blob = pushed_config(host, repository, entry["digest"])
    return json.loads(blob)["config"]["Labels"], blob


def test_labels_name_the_commit_and_a_source_without_credentials(project, registry,
                                                                  monkeypatch):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("tiny")}, commit=False)
    proj.git("remote", "add", "origin", REMOTE)
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{COMMITTED} +0000")
    head = proj.commit("initial")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    repository = f"{ns.split('/', 1)[1]}/tiny"

    labels, blob = build_labels(proj, server.host, repository)
    ours = {k: v for k, v in labels.items() if k.startswith(PREFIX)}
    assert ours == {
        PREFIX + "source": "https://git.example.test/acme/ml.git",  # userinfo dropped
        PREFIX + "revision": head,
        PREFIX + "version": "0.1.0",
        PREFIX + "created": "2001-02-03T04:05:06Z",  # the commit's time, not the build's
    }
    # Nowhere in the pushed config either (a label is also recorded in the history).
    assert TOKEN.encode() not in blob and b"ci-bot" not in blob

    # Built again from the same commit (the wall clock has moved on): the same labels.
    again, _ = build_labels(proj, server.host, repository, "--force")
    assert again == labels


def test_a_reused_image_keeps_the_labels_of_the_commit_that_built_it(project, registry):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("tiny")})
    first = proj.git("rev-parse", "HEAD").strip()
    repository = f"{ns.split('/', 1)[1]}/tiny"
    labels, _ = build_labels(proj, server.host, repository)
    assert labels[PREFIX + "revision"] == first

    proj.write({"README.md": "not part of any component\n"})
    second = proj.commit("docs only")
    result = proj.run("build", "--json")
    assert result.code == 0, result.err
    (entry,) = result.json["builds"]
    # Not rebuilt: the same inputs, the same image, so the labels still name the
    # first commit, while the record names the commit this build ran at.
    assert entry["status"] == "reused" and entry["built"] is False, entry
    assert result.json["source_commit"] == second != first
    reused = json.loads(pushed_config(server.host, repository, entry["digest"]))
    assert reused["config"]["Labels"] == labels


def test_a_commit_dated_past_the_year_9999_builds_without_a_created_label(
        project, registry, monkeypatch):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("tiny")}, commit=False)
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@99999999999999 +0000")  # year 3170843
    head = proj.commit("initial")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    labels, _ = build_labels(proj, server.host, f"{ns.split('/', 1)[1]}/tiny")
    assert labels[PREFIX + "revision"] == head
    assert PREFIX + "created" not in labels and labels[PREFIX + "version"] == "0.1.0"


@pytest.mark.parametrize("date", ["-99999999999999999999", "9" * 400], ids=["negative", "400"])
def test_a_commit_date_git_cannot_print_builds_without_a_created_label(project, registry, date):
    """Written by hand (`git commit` refuses these dates; `hash-object --literally` does not)."""
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("tiny")})
    raw = proj.git("cat-file", "commit", "HEAD")
    raw = re.sub(r"(?m)^(committer .*>) \d+ ", rf"\1 {date} ", raw)
    head = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
                          cwd=proj.path, input=raw, text=True, capture_output=True,
                          check=True).stdout.strip()
    proj.git("update-ref", "refs/heads/main", head)
    labels, _ = build_labels(proj, server.host, f"{ns.split('/', 1)[1]}/tiny")
    assert labels[PREFIX + "revision"] == head and PREFIX + "created" not in labels
