"""`mlops approve` signs the content that was reviewed, not whatever holds the id by then.

Release ids are 48 bits: a pusher can find a second release with the reviewed
one's id in about a minute of one CPU and swap it into staging before the
release manager runs `approve`. `--digest` (as `promote --plan --json` prints
it) pins the content; without it, an id that has named other content in the
environments' history is refused.
"""

from __future__ import annotations

import pytest

from mlops import config as cfg
from mlops import release as rel
from mlops.adapters.gitops.workspace import Workspace
from mlops.commands import approve as approve_cmd
from mlops.errors import ApprovalError
from mlops.records import replace
from mlops.services.envdir import EnvDir
from tests.commands.conftest import promote, release_of, to_staging
from tests.support.promotion import Playground, repo_files, ssh_key

ALICE = "alice@example.com"


@pytest.fixture
def waiting(project, built, tmp_path):
    """Staging holds a release that prod (approval: true) waits for; (play, alice's key)."""
    key, public = ssh_key(tmp_path, "alice")
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"{ALICE} {public}\n"}
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    return play, key


def _approve(play, key, *more):
    return play.proj.run("approve", "--env", "prod", "--release",
                         release_of(play, "staging")["id"], "--key", str(key),
                         "--principal", ALICE, *more)


@pytest.mark.usefixtures("docker_engine")
def test_the_plan_prints_the_digest_and_approve_signs_only_that_content(waiting):
    play, key = waiting
    plan = promote(play, "--to", "prod", "--from", "staging", "--plan", "--json")
    assert plan.code == 4, plan.err
    digest = plan.json["approval"]["digest"]
    assert digest.startswith("sha256:") and len(digest) == 71
    head = play.remote_head()
    other = "sha256:" + "0" * 64
    wrong = _approve(play, key, "--digest", other)
    assert wrong.code == 4 and f"not {other} as given" in wrong.err, wrong.err
    assert play.remote_head() == head
    right = _approve(play, key, "--digest", digest, "--json")
    assert right.code == 0 and right.json["digest"] == digest, right.err
    assert promote(play, "--to", "prod", "--from", "staging").code == 0


def test_an_id_that_named_other_content_needs_the_digest(tmp_path, monkeypatch):
    """In process, with ids cut to one hex digit so that two releases share one."""
    monkeypatch.setattr(rel.Release, "id", property(lambda r: "r-" + r.digest[7] * 12))
    reviewed = rel.Release("a" * 40, {"serve": rel.Image("r/serve", "sha256:" + "cd" * 32)},
                           model_uri="s3://models/v7")
    swapped = next(replace(reviewed, model_uri=f"s3://attacker/{n}") for n in range(1000)
                   if replace(reviewed, model_uri=f"s3://attacker/{n}").id == reviewed.id)
    assert swapped.digest != reviewed.digest
    root = _repo(tmp_path, [reviewed, swapped])
    config = cfg.load_config(root, {})
    with Workspace(str(tmp_path / "remote.git"), "main") as ws:
        opts = approve_cmd.ApproveOptions(env="prod", release=reviewed.id)
        with pytest.raises(ApprovalError, match="two releases share the id"):
            approve_cmd._check_content(ws, config, "prod", swapped, opts, None)
        pinned = replace(opts, digest=swapped.digest)  # what was reviewed, stated: it holds
        approve_cmd._check_content(ws, config, "prod", swapped, pinned, None)
        with pytest.raises(ApprovalError, match="its content changed since it was reviewed"):
            approve_cmd._check_content(ws, config, "prod", swapped,
                                       replace(opts, digest=reviewed.digest), None)


def _repo(tmp_path, releases):
    """A remote whose staging record held each release in turn (one commit each)."""
    from tests.conftest import git, write_files
    from tests.support.promotion import CONFIG

    root = tmp_path / "clone"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_files(root, {"mlops.yaml": CONFIG.format(registry="127.0.0.1:5000/t", soak="0s")})
    (root / "environments/staging").mkdir(parents=True)
    for n, release in enumerate(releases):
        EnvDir(root, "staging").write_record(rel.EnvRecord("staging", release, "dev"))
        git(root, "add", "-A")
        git(root, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", f"r{n}")
    git(tmp_path, "clone", "-q", "--bare", str(root), str(tmp_path / "remote.git"))
    return root


