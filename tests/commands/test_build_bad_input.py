"""Bad input to `mlops build`: one line, a documented exit code, nothing built."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from tests.conftest import mlops_yaml, tiny_component

pytestmark = pytest.mark.usefixtures("docker_engine")

CASES = [
    # (id, files to overwrite or add, extra args, exit code, message fragment)
    ("malformed-yaml", {"components/bad/component.yaml": "name: bad\nversion: [1\n"}, [], 1,
     "components/bad/component.yaml:3: invalid YAML"),
    ("name-mismatch", {"components/bad/component.yaml": "name: other\nversion: 1.0.0\n"}, [], 1,
     "components/bad/component.yaml:1: name 'other' does not match its folder 'bad'"),
    ("name-dotdot", {"components/bad/component.yaml": "name: ../bad\nversion: 1.0.0\n"}, [], 1,
     "must not contain '..'"),
    ("name-slash", {"components/bad/component.yaml": "name: x/bad\nversion: 1.0.0\n"}, [], 1,
     "must not contain '..' or path separators"),
    ("name-upper", {"components/bad/component.yaml": "name: Bad\nversion: 1.0.0\n"}, [], 1,
     "name 'Bad' must be lowercase"),
    ("name-space", {"components/bad/component.yaml": "name: b ad\nversion: 1.0.0\n"}, [], 1,
     "name 'b ad' must be lowercase"),
    ("missing-dockerfile", {"components/bad/Dockerfile": None}, [], 1,
     "Dockerfile not found: components/bad/Dockerfile"),
    ("bad-semver", {"components/bad/component.yaml": "name: bad\nversion: v1\n"}, [], 1,
     "components/bad/component.yaml:2: version must be a semantic version like 1.2.3, got 'v1'"),
    ("unknown-key", {"components/bad/component.yaml": "name: bad\nversion: 1.0.0\nvresion: 2\n"},
     [], 1, "unknown key 'vresion' in component.yaml; did you mean 'version'?"),
    ("depends-outside", {"components/bad/component.yaml":
                         "name: bad\nversion: 1.0.0\ndepends_on: [../../etc]\n"}, [], 1,
     "'../../etc' has a '..' part"),
    ("depends-absolute", {"components/bad/component.yaml":
                          "name: bad\nversion: 1.0.0\ndepends_on: [/etc]\n"}, [], 1,
     "'/etc' is absolute"),
    ("unknown-component", {}, ["nosuch"], 2, "unknown component 'nosuch' (known: bad, good)"),
    ("bad-build-arg", {}, ["--build-arg", "NOEQUALS"], 2, "expected KEY=VALUE"),
    ("bad-jobs", {}, ["--jobs", "0"], 2, "must be at least 1"),
    ("unknown-ref", {}, ["--changed-since", "no-such-ref"], 1, "unknown git ref 'no-such-ref'"),
    ("bad-mlops-yaml", {"mlops.yaml": "registry: a:1/b\nbuild:\n  job: 2\n"}, [], 1,
     "mlops.yaml:3: unknown key 'job' in build; did you mean 'jobs'?"),
]


@pytest.mark.parametrize(("files", "args", "code", "message"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(project, registry, tmp_path, files, args, code, message):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns),
                    **tiny_component("good"), **tiny_component("bad")})
    for rel, content in files.items():
        if content is None:
            (proj.path / rel).unlink()
        else:
            proj.write({rel: content})
    proj.commit("break something")
    before = proj.git("rev-parse", "HEAD")
    out = tmp_path / "build.json"

    result = proj.run("build", "--output", str(out), *args)

    assert result.code == code, result.err
    assert result.err.count("\n") == 1, result.err  # exactly one line, no traceback
    assert message in result.err
    assert result.err.startswith("mlops: error: ")
    assert not out.exists()
    assert proj.git("rev-parse", "HEAD") == before and proj.status() == ""
    repo_ns = ns.split("/", 1)[1]
    assert server.tags(f"{repo_ns}/good") == [] and server.tags(f"{repo_ns}/bad") == []
    local = subprocess.run(["docker", "images", "-q", f"{ns}/good"], capture_output=True, text=True)
    assert local.stdout.strip() == ""


def test_json_error_is_one_document(project, registry):
    _server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("good")})
    result = proj.run("build", "nosuch", "--json")
    assert result.code == 2
    assert result.json == {"ok": False, "error": "unknown component 'nosuch' (known: good)",
                           "exit_code": 2}


def test_not_a_git_repo(tmp_path, capsys):
    from mlops.cli import main

    code = main(["build", "--repo", str(tmp_path)])
    assert code == 1
    assert "not inside a git repository" in capsys.readouterr().err


def test_untracked_component_asks_for_git_add(project, registry, tmp_path):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("good")})
    proj.write(tiny_component("fresh"))  # written, never `git add`ed
    result = proj.run("build", "--output", str(tmp_path / "build.json"))
    assert result.code == 1
    assert ("components/fresh/Dockerfile is not tracked by git; `git add` it "
            "(mlops builds from tracked files only)") in result.err
    assert not (tmp_path / "build.json").exists()
    assert server.tags(f"{ns.split('/', 1)[1]}/good") == []


def test_a_dockerfile_typo_shows_the_engines_reason(project, registry):
    """Not the SDK's first line, a long request URL ending in 'Bad Request' (issue 16)."""
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("bad")})
    dockerfile = proj.path / "components/bad/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM ", "FRM ", 1))
    proj.commit("a typo")
    result = proj.run("build")
    assert result.code == 1, result.err
    errors = [ln for ln in result.err.splitlines() if ln.startswith("mlops: error:")]
    assert len(errors) == 1 and "Traceback" not in result.err, result.err
    assert "unknown instruction: FRM" in errors[0], errors[0]
    assert "http+docker://" not in errors[0] and len(errors[0]) < 300, errors[0]
    assert server.tags(f"{ns.split('/', 1)[1]}/bad") == []


@pytest.mark.parametrize("dirty", [False, True], ids=["clean", "dirty"])
def test_a_submodule_in_a_component_is_refused_at_plan_time(project, registry, tmp_path, dirty):
    """A submodule is a commit id to git and a folder to Docker (issue 16: it was planned,
    then failed with 'Is a directory'; dirty, it broke --dry-run)."""
    server, ns = registry
    sub = tmp_path / "sub"
    sub.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(sub)], check=True)
    (sub / "vendored.py").write_text("X = 1\n")
    subprocess.run(["git", "-C", str(sub), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(sub), "-c", "user.name=t", "-c", "user.email=t@x",
                    "commit", "-qm", "sub"], check=True)
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("model")})
    proj.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub),
             "components/model/vendored")
    proj.commit("vendor a submodule")
    if dirty:
        (proj.path / "components/model/vendored/vendored.py").write_text("X = 2\n")
    for args in (["--dry-run"], []):
        result = proj.run("build", *args)
        assert result.code == 1 and result.err.count("\n") == 1, result.err
        assert result.err == ("mlops: error: components/model/vendored is a git submodule "
                              "inside component model's inputs; mlops builds from files git "
                              "tracks in this repository: vendor its files or install it in "
                              "the Dockerfile\n")
    assert server.tags(f"{ns.split('/', 1)[1]}/model") == []


def test_output_through_a_symlink_writes_its_target_and_keeps_the_link(project, registry,
                                                                       tmp_path):
    _, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("good")})
    target = tmp_path / "records" / "build.json"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "build.json"
    link.symlink_to(target)
    result = proj.run("build", "--output", str(link))
    assert result.code == 0, result.err
    assert link.is_symlink() and link.resolve() == target
    assert json.loads(target.read_text())["builds"][0]["component"] == "good"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # and devices stay devices (see corpus)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "build"])
@pytest.mark.parametrize("key", ["missing", "folder"])
def test_a_sign_key_that_cannot_be_read_is_refused_before_the_plan(project, registry, tmp_path,
                                                                 dry_run, key):
    server, ns = registry
    proj = project({"mlops.yaml": mlops_yaml(ns), **tiny_component("good")})
    path = tmp_path / key
    if key == "folder":
        path.mkdir()
    flags = ["--dry-run"] if dry_run else ["--builder", "ci@example.com"]

    result = proj.run("build", "--sign-key", str(path), *flags)

    assert result.code == 1, result.err
    assert result.err == f"mlops: error: --sign-key {path} does not exist or is not a file\n"
    assert not (proj.path / ".git" / "mlops").exists()  # no plan made, so no cache saved
    assert server.tags(f"{ns.split('/', 1)[1]}/good") == [] and proj.status() == ""
