"""An image holds exactly the content its input hash covers, whatever the work tree says.

Attacks from issue 14, each on a real repository, the real Docker Engine and
the real registry:

- `git update-index --assume-unchanged` / `--skip-worktree`, or a sparse
  checkout, then an edit: git's index (which the hash reads) and the work tree
  disagree. Contexts are made from the hashed blobs (`git cat-file`), so the
  image pushed under the clean `ih-` tag holds the committed content, which is
  checked by pulling it back from the registry by digest and reading the file;
- symlinks that leave the repository (the Dockerfile, a file in the context,
  `depends_on` and `context` paths): one `mlops: error:` line naming the path,
  exit 1, nothing built or pushed, the work tree as it was (Snapshot);
- a symlink inside the repository is hashed and built as its target's
  content: changing the target changes the hash and the image.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import mlops_yaml, tiny_component
from tests.support.untouched import Snapshot

pytestmark = pytest.mark.usefixtures("docker_engine")

ORIGINAL = "print('solo')\n"
EDITED = "print('EDITED, never hashed')\n"


def docker(*args: str) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def pushed_file(image: str, digest: str, path: str) -> str:
    """`path` in the image the registry serves as `image@digest` (local copies removed first)."""
    for image_id in set(docker("images", "-q", image).split()):
        docker("rmi", "-f", image_id)
    ref = f"{image}@{digest}"
    docker("pull", "-q", ref)
    return docker("run", "--rm", "--network", "host", "--entrypoint", "cat", ref, path)


@pytest.fixture
def solo(project, registry):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("solo")})
    return proj, server, ns


def plan_of(proj) -> dict:
    result = proj.run("build", "--dry-run", "--json")
    assert result.code == 0, result.err
    return result.json["plan"][0]


def build_of(proj) -> dict:
    result = proj.run("build", "--json")
    assert result.code == 0, result.err
    return result.json["builds"][0]


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_hidden_edit_is_not_built_under_the_clean_hash(solo, flag):
    proj, _server, _ns = solo
    clean = plan_of(proj)
    proj.git("update-index", flag, "components/solo/src/main.py")
    proj.write({"components/solo/src/main.py": EDITED})
    planned = plan_of(proj)
    assert planned["input_hash"] == clean["input_hash"]  # git's index hides the edit

    built = build_of(proj)

    assert built["built"] is True and built["input_hash"] == planned["input_hash"]
    assert built["tags"] == planned["tags"] and not built["tags"][1].endswith("-dirty")
    assert pushed_file(built["image"], built["digest"], "/app/main.py") == ORIGINAL
    assert (proj.path / "components/solo/src/main.py").read_text() == EDITED  # left alone


def test_sparse_checkout_builds_the_committed_content(solo):
    proj, _server, _ns = solo
    clean = plan_of(proj)
    proj.git("sparse-checkout", "set", "--no-cone", "/*", "!/components/solo/src/")
    assert not (proj.path / "components/solo/src/main.py").exists()

    planned = plan_of(proj)
    built = build_of(proj)

    assert planned["input_hash"] == built["input_hash"] == clean["input_hash"]
    assert pushed_file(built["image"], built["digest"], "/app/main.py") == ORIGINAL


def test_a_later_clean_build_reuses_an_image_of_the_clean_content(solo):
    proj, _server, _ns = solo
    proj.git("update-index", "--assume-unchanged", "components/solo/src/main.py")
    proj.write({"components/solo/src/main.py": EDITED})
    first = build_of(proj)
    proj.git("update-index", "--no-assume-unchanged", "components/solo/src/main.py")
    proj.write({"components/solo/src/main.py": ORIGINAL})

    again = build_of(proj)

    assert again["built"] is False and again["digest"] == first["digest"]
    assert pushed_file(again["image"], again["digest"], "/app/main.py") == ORIGINAL


def test_edit_after_planning_fails_instead_of_slipping_in(solo, monkeypatch):
    """A dirty file is read from the work tree and checked against the blob it was hashed as."""
    import mlops.commands.build as build_cmd

    proj, server, ns = solo
    proj.write({"components/solo/src/main.py": "print('dirty, hashed')\n"})
    real = build_cmd._with_labels

    def edit_then_label(*args, **kwargs):  # runs between planning and building
        proj.write({"components/solo/src/main.py": EDITED})
        return real(*args, **kwargs)

    monkeypatch.setattr(build_cmd, "_with_labels", edit_then_label)
    result = proj.run("build")
    assert result.code == 1
    assert "components/solo/src/main.py changed after mlops hashed it" in result.err
    assert server.tags(f"{ns.split('/', 1)[1]}/solo") == []


# -- symlinks ------------------------------------------------------------------


def outside_dir(proj) -> Path:
    """A folder beside the repository, with a Dockerfile and a secret in it."""
    out = proj.path.parent / "outside"
    (out / "lib").mkdir(parents=True, exist_ok=True)
    (out / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (out / "secret.txt").write_text("not in git\n")
    (out / "lib" / "x.py").write_text("X = 1\n")
    return out


def link(proj, rel: str, target: str | Path) -> None:
    path = proj.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    os.symlink(target, path)


LEAVING = [
    # (id, link path, target (relative to the outside folder, or absolute), extra spec lines)
    ("dockerfile-absolute", "components/solo/Dockerfile", "/etc/passwd", ""),
    ("dockerfile-relative", "components/solo/Dockerfile", "../../../outside/Dockerfile", ""),
    ("context-file", "components/solo/src/secret.txt", "OUT/secret.txt", ""),
    ("context-file-dotdot", "components/solo/src/secret.txt", "../../../../outside/secret.txt",
     ""),
    ("depends-on", "libs/ext", "OUT/lib", "depends_on: [libs/ext]\n"),
    ("context", "ctx", "OUT", "context: ctx\n"),
    ("component-yaml-sibling", "components/solo/src/lib", "OUT/lib", ""),
]


@pytest.mark.parametrize(("rel", "target", "extra"), [c[1:] for c in LEAVING],
                         ids=[c[0] for c in LEAVING])
@pytest.mark.parametrize("dry_run", [False, True], ids=["build", "dry-run"])
def test_symlink_out_of_the_repository_is_refused(solo, rel, target, extra, dry_run):
    proj, server, _ns = solo
    out = outside_dir(proj)
    if extra:
        proj.write({"components/solo/component.yaml": "name: solo\nversion: 0.1.0\n" + extra})
    link(proj, rel, target.replace("OUT", str(out)))
    proj.commit("a link out of the repository")
    before = Snapshot.take(repo=proj.path, registry=server)

    result = proj.run("build", *(["--dry-run"] if dry_run else []))

    assert result.code == 1, result.err
    assert result.err.startswith("mlops: error: ") and result.err.count("\n") == 1, result.err
    assert f"{rel} is a symlink to " in result.err and "outside the repository" in result.err
    before.assert_same(Snapshot.take(repo=proj.path, registry=server))


def test_untracked_link_on_a_declared_path_is_refused(solo):
    """`depends_on: [alias/lib]` where `alias` is a link git does not track: git lists
    nothing below it, so the hash would cover nothing that Docker might see."""
    proj, server, _ns = solo
    out = outside_dir(proj)
    proj.write({"components/solo/component.yaml":
                "name: solo\nversion: 0.1.0\ndepends_on: [alias/lib]\n"})
    proj.commit("depends on a path below a link")
    link(proj, "alias", out)  # after the commit: untracked
    before = Snapshot.take(repo=proj.path, registry=server)

    result = proj.run("build")

    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "mlops: error: alias/lib leads through a symlink to " in result.err
    assert "outside the repository" in result.err
    before.assert_same(Snapshot.take(repo=proj.path, registry=server))


@pytest.mark.parametrize(("rel", "target", "message"), [
    ("components/solo/src/gone.py", "nothing-here.py", "which git does not track"),
    ("components/solo/src/loop", "..", "a folder that contains it (a loop)"),
])
def test_dangling_or_looping_link_is_refused(solo, rel, target, message):
    proj, server, _ns = solo
    link(proj, rel, target)
    proj.commit("a bad link")
    before = Snapshot.take(repo=proj.path, registry=server)
    result = proj.run("build")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert result.err.startswith(f"mlops: error: {rel} is a symlink to ")
    assert message in result.err
    before.assert_same(Snapshot.take(repo=proj.path, registry=server))


def test_link_inside_the_repository_is_hashed_and_built_as_its_target(solo):
    proj, _server, _ns = solo
    proj.write({"libs/common.py": "COMMON = 1\n",
                "libs/Dockerfile": "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n"
                                   "WORKDIR /app\nCOPY src/ /app/\n"})
    link(proj, "components/solo/src/common.py", "../../../libs/common.py")
    link(proj, "components/solo/Dockerfile", "../../libs/Dockerfile")
    proj.commit("shared file and Dockerfile by link")
    first = build_of(proj)
    assert pushed_file(first["image"], first["digest"], "/app/common.py") == "COMMON = 1\n"

    proj.write({"libs/common.py": "COMMON = 2\n"})  # only the target changes
    proj.commit("change the target")
    planned = plan_of(proj)
    assert planned["action"] == "build" and planned["input_hash"] != first["input_hash"]
    second = build_of(proj)
    assert second["input_hash"] == planned["input_hash"]
    assert pushed_file(second["image"], second["digest"], "/app/common.py") == "COMMON = 2\n"

    proj.write({"libs/Dockerfile": "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n"
                                   "WORKDIR /srv\nCOPY src/ /srv/\n"})
    proj.commit("change the linked Dockerfile")
    third = build_of(proj)
    assert third["built"] is True and third["input_hash"] != second["input_hash"]
    assert pushed_file(third["image"], third["digest"], "/srv/common.py") == "COMMON = 2\n"


def test_uncommitted_edit_of_a_link_target_marks_the_tag_dirty(solo):
    proj, _server, _ns = solo
    proj.write({"libs/common.py": "COMMON = 1\n"})
    link(proj, "components/solo/src/common.py", "../../../libs/common.py")
    proj.commit("shared file by link")
    clean = plan_of(proj)
    proj.write({"libs/common.py": "COMMON = 'edited'\n"})
    planned = plan_of(proj)
    assert planned["input_hash"] != clean["input_hash"] and planned["tags"][1].endswith("-dirty")
    built = build_of(proj)
    assert pushed_file(built["image"], built["digest"], "/app/common.py") == "COMMON = 'edited'\n"
