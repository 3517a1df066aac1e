"""`mlops rollback` is a compare-and-swap: it never rolls back from a release it did not see.

A rollback's push is rejected when the remote moved on, and `in_workspace`
reruns it on the new head. Recomputed there from scratch it would roll back
from whatever runs now, e.g. to the very release the operator wanted gone.
"""

from __future__ import annotations

import stat

import pytest

from tests.commands.conftest import promote, release_of
from tests.conftest import git

pytestmark = pytest.mark.usefixtures("docker_engine")


def _promote_dev(play, built, model: str, *extra: str):
    result = promote(play, "--to", "dev", "--build", str(built[1]), "--model-uri", model,
                     "--json", *extra)
    assert result.code == 0, result.err
    return result.json


def _two_releases(play, built) -> tuple[str, str]:
    first = _promote_dev(play, built, "s3://models/cancer-1")["release"]
    second = _promote_dev(play, built, "s3://models/cancer-2")["release"]
    return first, second


def test_expect_names_the_release_being_rolled_back(play, built):
    first, second = _two_releases(play, built)
    head = play.remote_head()
    stale = play.proj.run("rollback", "--env", "dev", "--expect", first)
    assert stale.code == 1 and stale.err.count("\n") == 1, stale.err
    assert f"environment dev runs release {second} (since promote commit" in stale.err
    assert f"not {first} as expected; nothing rolled back" in stale.err
    assert play.remote_head() == head
    done = play.proj.run("rollback", "--env", "dev", "--expect", second, "--json")
    assert done.code == 0, done.err
    assert (done.json["release"], done.json["previous"]) == (first, second)
    assert release_of(play, "dev")["id"] == first


def _land_on_first_push(play, tmp_path, monkeypatch, commit: str) -> None:
    """A git pre-push hook (for mlops' own clone, through the global config) that moves the
    remote's branch to `commit` just before the first push: the race, made deterministic."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "raced"
    hook = hooks / "pre-push"
    hook.write_text(f"#!/bin/sh\n[ -e '{marker}' ] && exit 0\n: > '{marker}'\n"
                    f"git --git-dir='{play.remote}' update-ref refs/heads/main {commit}\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\thooksPath = {hooks}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))


def test_a_rollback_racing_a_promotion_refuses_instead_of_changing_its_target(
        play, built, tmp_path, monkeypatch):
    first, second = _two_releases(play, built)
    racer = _promote_dev(play, built, "s3://models/cancer-3", "--pr")  # on a side branch
    raced = git(play.remote, "rev-parse", racer["pushed_to"])
    _land_on_first_push(play, tmp_path, monkeypatch, raced)
    result = play.proj.run("rollback", "--env", "dev")
    assert (tmp_path / "raced").exists()  # the race happened: the first push met a new head
    assert "the remote moved on; recomputing on its new head" in result.err
    errors = [ln for ln in result.err.splitlines() if ln.startswith("mlops: error:")]
    assert result.code == 1 and len(errors) == 1, result.err
    assert f"environment dev runs release {racer['release']}" in result.err
    assert f"not {second} as expected; nothing rolled back" in result.err
    assert play.remote_head() == raced  # the racer's promotion stands, nothing on top
    assert release_of(play, "dev")["id"] == racer["release"] != first


def test_a_rollback_racing_an_unrelated_commit_keeps_its_target(
        play, built, tmp_path, monkeypatch):
    first, second = _two_releases(play, built)
    play.pull()
    (play.clone / "NOTES.md").write_text("an unrelated change\n")
    unrelated = play.proj.commit("docs: notes")
    play.proj.git("push", "-q", "origin", f"{unrelated}:refs/heads/side")
    _land_on_first_push(play, tmp_path, monkeypatch, unrelated)
    result = play.proj.run("rollback", "--env", "dev", "--json")
    assert (tmp_path / "raced").exists()
    assert result.code == 0, result.err
    assert (result.json["release"], result.json["previous"]) == (first, second)
    assert git(play.remote, "rev-parse", "refs/heads/main~1") == unrelated
