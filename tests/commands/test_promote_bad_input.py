"""Bad input to `mlops promote`: one line, a documented exit code, nothing committed or pushed."""

from __future__ import annotations

import json

import pytest

from tests.commands.conftest import promote, to_staging

pytestmark = pytest.mark.usefixtures("docker_engine")


def edited_build(play, built, change) -> str:
    record = json.loads(built[1].read_text())
    change(record)
    path = play.base / "edited-build.json"
    path.write_text(json.dumps(record))
    return str(path)


def drop_train(record):
    record["builds"] = [b for b in record["builds"] if b["component"] != "train"]


def fake_digest(record):
    record["builds"][0]["digest"] = "sha256:" + "e" * 64


def another_repository(record):
    """Issue 14's attack 5: the record names an image outside this project's repositories
    (same registry host here, another path; a foreign host is refused the same way)."""
    entry = next(b for b in record["builds"] if b["component"] == "train")
    entry["image"] = entry["image"].rsplit("/", 2)[0] + "/attacker/evil"


def tag_only(record):
    record["builds"][0]["digest"] = None


def path_in_input_hash(record):
    """The input hash becomes the `ih-` tag in a registry URL: a path there is refused."""
    next(b for b in record["builds"] if b["component"] == "train")["input_hash"] = \
        "../../../_catalog"


CASES = [
    ("unknown-env", lambda p, b: ["--to", "qa", "--build", str(b[1])], 2,
     "unknown environment 'qa' (known: dev, staging, prod)"),
    ("missing-build", lambda p, b: ["--to", "dev", "--build", str(p.base / "nope.json")], 1,
     "build record not found"),
    ("malformed-build", lambda p, b: ["--to", "dev", "--build", str(p.metrics("bad", "{x"))], 1,
     "not a readable JSON build record"),
    ("lacks-component", lambda p, b: ["--to", "dev", "--build", edited_build(p, b, drop_train)],
     1, "no build of component 'train'"),
    ("image-of-another-repository",
     lambda p, b: ["--to", "dev", "--build", edited_build(p, b, another_repository)], 1,
     "/attacker/evil' is not the configured '"),
    ("digest-not-in-registry",  # the ih- tag serves the real digest, not this one
     lambda p, b: ["--to", "dev", "--build", edited_build(p, b, fake_digest)], 1,
     "is not what the registry serves for ih-"),
    ("tag-not-digest", lambda p, b: ["--to", "dev", "--build", edited_build(p, b, tag_only)], 1,
     "has no digest"),
    ("input-hash-not-hex",
     lambda p, b: ["--to", "dev", "--build", edited_build(p, b, path_in_input_hash)], 1,
     "input_hash '../../../_catalog' is not a sha256 in hex"),
    ("skip-environment", lambda p, b: ["--to", "prod", "--from", "dev"], 2,
     "cannot promote dev -> prod: environments move in order (dev -> staging -> prod)"),
    ("build-into-later-env", lambda p, b: ["--to", "staging", "--build", str(b[1])], 2,
     "--build promotes into the first environment (dev) only"),
    ("both-sources", lambda p, b: ["--to", "dev", "--build", str(b[1]), "--from", "dev"], 2,
     "not allowed with argument"),
    ("nothing-in-source", lambda p, b: ["--to", "staging", "--from", "dev"], 1,
     "environment dev has no release to promote yet"),
]


@pytest.mark.parametrize(("args", "code", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(play, built, args, code, message):
    head = play.remote_head()
    result = promote(play, *args(play, built))
    assert result.code == code, result.err
    assert result.err.count("\n") == 1 and message in result.err, result.err
    assert play.remote_head() == head and play.proj.status() == ""


def test_dirty_clone_is_refused(play, built):
    play.proj.write({"environments/dev/kustomization.yaml": "# local edit\n"})
    head = play.remote_head()
    result = promote(play, "--to", "dev", "--build", str(built[1]))
    assert result.code == 1 and "has uncommitted changes" in result.err
    assert play.remote_head() == head


def test_detached_clone_is_refused(play, built):
    play.proj.git("checkout", "-q", "--detach")
    result = promote(play, "--to", "dev", "--build", str(built[1]))
    assert result.code == 1 and "HEAD is detached" in result.err


def test_unreachable_remote(play, built):
    play.proj.git("remote", "set-url", "origin", str(play.base / "gone.git"))
    result = promote(play, "--to", "dev", "--build", str(built[1]))
    assert result.code == 1 and "cannot clone" in result.err
    assert result.err.count("\n") == 1


def test_an_overlay_that_would_not_render_is_never_pushed(play, built):
    """Without a serving patch (no model URI) nothing rendered the overlay before the commit:
    a kustomization naming a missing file was pushed, exit 0 (issue 16)."""
    path = play.clone / "environments/dev/kustomization.yaml"
    path.write_text(path.read_text().replace("  - ../base\n", "  - ../base\n  - gone.yaml\n"))
    play.proj.commit("a resource that is not there")
    play.proj.git("push", "-q", "origin", "main")
    head = play.remote_head()
    result = promote(play, "--to", "dev", "--build", str(built[1]))
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "kubectl kustomize environments/dev failed:" in result.err
    assert "gone.yaml" in result.err
    assert play.remote_head() == head


def test_an_overlay_that_would_not_render_is_the_error_before_a_missing_approval(play, built):
    """The render runs while the approval and the trust root are checked (commands/promote.py
    `_attempt`); its failure still comes first, as when it ran before them: exit 1, not 4."""
    to_staging(play, built)
    play.proj.git("pull", "-q", "--ff-only", "origin", "main")
    path = play.clone / "environments/prod/kustomization.yaml"
    path.write_text(path.read_text().replace("  - ../base\n", "  - ../base\n  - gone.yaml\n"))
    play.proj.commit("a resource that is not there")
    play.proj.git("push", "-q", "origin", "main")
    head = play.remote_head()
    result = promote(play, "--to", "prod", "--from", "staging")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "kubectl kustomize environments/prod failed:" in result.err
    assert play.remote_head() == head
    path.write_text(path.read_text().replace("  - gone.yaml\n", ""))
    play.proj.commit("the resource list fixed")
    play.proj.git("push", "-q", "origin", "main")
    result = promote(play, "--to", "prod", "--from", "staging")
    assert result.code == 4 and "approve" in result.err, result.err  # now the approval's turn


def test_a_relative_path_remote_is_read_from_the_top_of_the_clone(play, built):
    """`git remote add origin ../remote.git` works for git push; promote, which clones from
    a temporary directory, reads it from where git does."""
    play.proj.git("remote", "set-url", "origin", "../remote.git")
    result = play.proj.run("promote", "--to", "dev", "--build", str(built[1]), "--json")
    assert result.code == 0, result.err
    assert play.remote_head() == result.json["commit"]
