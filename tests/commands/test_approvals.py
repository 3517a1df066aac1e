"""Signed approvals with real SSH keys: the valid one counts, every forgery is exit 4."""

from __future__ import annotations

import pytest

from mlops.trailers import approval_message
from tests.commands.conftest import GOOD, promote, release_of, to_staging
from tests.conftest import git
from tests.support.promotion import Playground, push_approval, repo_files, ssh_key

pytestmark = pytest.mark.usefixtures("docker_engine")


@pytest.fixture
def signed(project, built, tmp_path):
    """A playground whose repo lists alice and bob as signers; only alice manages releases."""
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "bob", "mallory")}
    signers = "".join(f"{name}@example.com {keys[name][1]}\n" for name in ("alice", "bob"))
    files = {**repo_files(built[0]), ".mlops/allowed_signers": signers}
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    return play, keys


def forge(play, env, release_id, who, key=None):
    """Push an approval-shaped commit, signed with `key` or not at all."""
    play.pull()
    args = ["-c", "gpg.format=ssh"] + (["-c", f"user.signingkey={key}"] if key else [])
    git(play.clone, *args, "commit", "-q", "--allow-empty", *(["-S"] if key else []),
        "-m", approval_message(env, release_id, who))
    git(play.clone, "push", "-q", "origin", "main")


def refused(play, reason):
    head = play.remote_head()
    result = promote(play, "--to", "prod", "--from", "staging")
    assert result.code == 4, result.err
    assert result.err.count("\n") == 1 and reason in result.err, result.err
    assert play.remote_head() == head
    return result


def test_no_approval_is_refused(signed):
    play, _ = signed
    refused(play, "prod needs a release manager's signed approval")


def test_unsigned_commit_with_the_trailer_is_refused(signed):
    play, _ = signed
    forge(play, "prod", release_of(play, "staging")["id"], "alice@example.com")
    refused(play, "no signature")


def test_key_that_is_not_listed_is_refused(signed):
    play, keys = signed
    forge(play, "prod", release_of(play, "staging")["id"], "alice@example.com",
          key=keys["mallory"][0])
    refused(play, "No principal matched")


def test_listed_signer_who_is_not_a_release_manager_is_refused(signed):
    play, keys = signed
    forge(play, "prod", release_of(play, "staging")["id"], "bob@example.com",
          key=keys["bob"][0])
    refused(play, "bob@example.com is not a release manager")


def test_approval_for_another_release_is_refused(signed):
    play, keys = signed
    forge(play, "prod", "r-000000000000", "alice@example.com", key=keys["alice"][0])
    refused(play, "none found")


def test_valid_approval_is_accepted_and_recorded(signed):
    play, keys = signed
    release_id = release_of(play, "staging")["id"]
    approval = play.proj.run("approve", "--env", "prod", "--release", release_id,
                             "--key", str(keys["alice"][0]), "--principal", "alice@example.com",
                             "--json")
    assert approval.code == 0, approval.err
    result = promote(play, "--to", "prod", "--from", "staging", "--json")
    assert result.code == 0, result.err
    assert result.json["approver"] == "alice@example.com"
    prod = release_of(play, "prod")
    assert prod["id"] == release_id and prod["approval"]["commit"] == approval.json["commit"]
    assert prod["images"] == release_of(play, "staging")["images"] == release_of(play, "dev")["images"]
    message = git(play.remote, "log", "-1", "--format=%B", "main")
    assert "Mlops-Approver: alice@example.com" in message


def test_older_approval_replayed_for_a_newer_release_is_refused(signed, built):
    play, keys = signed
    old = release_of(play, "staging")["id"]
    assert play.proj.run("approve", "--env", "prod", "--release", old,
                         "--key", str(keys["alice"][0]), "--principal",
                         "alice@example.com").code == 0
    newer = {**GOOD, "accuracy": 0.96}
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(play.metrics("n", newer))).code == 0
    assert promote(play, "--to", "staging", "--from", "dev").code == 0
    assert release_of(play, "staging")["id"] != old
    refused(play, "none found")


def test_approve_refuses_a_release_that_is_not_waiting(signed):
    play, keys = signed
    result = play.proj.run("approve", "--env", "prod", "--release", "r-000000000000",
                           "--key", str(keys["alice"][0]))
    assert result.code == 1 and "is not the one waiting in staging" in result.err


@pytest.mark.parametrize("key, principal, reason", [
    ("mallory", "alice@example.com", "No principal matched"),
    ("bob", "bob@example.com", "bob@example.com is not a release manager"),
    ("alice", "bob@example.com", "names bob@example.com as approver but alice@example.com "
                                 "signed it"),
])
def test_approve_refuses_what_promote_would_refuse_and_pushes_nothing(signed, key, principal,
                                                                       reason):
    play, keys = signed
    release_id = release_of(play, "staging")["id"]
    head = play.remote_head()
    result = play.proj.run("approve", "--env", "prod", "--release", release_id,
                           "--key", str(keys[key][0]), "--principal", principal)
    assert result.code == 4, result.err
    assert result.err.count("\n") == 1 and reason in result.err, result.err
    assert f"this approval by {principal} would not count" in result.err
    assert play.remote_head() == head
    refused(play, "prod needs a release manager's signed approval")


def test_a_pushed_approval_that_names_another_approver_is_refused(signed):
    """Made by hand (signed by alice, naming bob): history would name someone who did not
    sign it, so it approves nothing."""
    play, keys = signed
    forge(play, "prod", release_of(play, "staging")["id"], "bob@example.com",
          key=keys["alice"][0])
    refused(play, "names bob@example.com as approver but alice@example.com signed it")


# -- a key's validity window (valid-after/valid-before) is judged now ----------------
#
# git hands ssh-keygen the commit's own committer date as the time to judge a key at,
# and whoever signs writes that date; so a retired key could approve by backdating.

BACKDATED = {"GIT_COMMITTER_DATE": "2019-06-01T00:00:00Z",
             "GIT_AUTHOR_DATE": "2019-06-01T00:00:00Z"}


@pytest.fixture
def alice_with(project, built, tmp_path):
    """A playground whose allowed signers list alice (the release manager) with `options`."""
    def make(options: str):
        key = ssh_key(tmp_path, "alice")
        files = {**repo_files(built[0]),
                 ".mlops/allowed_signers": f"alice@example.com {options} {key[1]}\n"}
        play = Playground(tmp_path, project(files))
        to_staging(play, built)
        return play, key[0]
    return make


def test_a_retired_key_cannot_approve_by_backdating_its_commit(alice_with, monkeypatch):
    """alice's key was retired (valid-before 2020); an approval she signs dated 2019 would
    pass `git verify-commit`, which judges the key at that date. It is refused."""
    play, key = alice_with('valid-before="20200101"')
    with monkeypatch.context() as m:
        for name, value in BACKDATED.items():
            m.setenv(name, value)
        push_approval(play, "prod", "staging", "alice@example.com", key)
    assert git(play.remote, "log", "-1", "--format=%cI", "main").startswith("2019-06-01")
    refused(play, "alice@example.com: its valid-before has passed")


def test_a_key_in_force_now_approves_whatever_date_its_commit_bears(alice_with):
    """Valid from 2024 until 2099: `mlops approve` with the commit dated 2019 (before the
    window opens) approves, since only now counts."""
    play, key = alice_with('valid-after="20240101",valid-before="20990101"')
    release_id = release_of(play, "staging")["id"]
    approval = play.proj.run("approve", "--env", "prod", "--release", release_id, "--key",
                             str(key), "--principal", "alice@example.com", env=BACKDATED)
    assert approval.code == 0, approval.err
    result = promote(play, "--to", "prod", "--from", "staging", "--json")
    assert result.code == 0, result.err
    assert result.json["approver"] == "alice@example.com"
