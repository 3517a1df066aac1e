"""Only the commit `mlops approve` makes is an approval, bound to the release's full digest
and, in a held environment, given after the hold. Real SSH keys, real repos."""

from __future__ import annotations

import pytest

from mlops import release as rel
from mlops.trailers import approval_message
from tests.commands import test_approvals as approvals
from tests.commands.conftest import GOOD, promote, release_of
from tests.conftest import git

pytestmark = pytest.mark.usefixtures("docker_engine")
signed = approvals.signed  # the fixture: alice and bob sign, only alice manages releases
refused = approvals.refused
ALICE = "alice@example.com"
TO_PROD = ("--to", "prod", "--from", "staging")


def waiting(play) -> rel.Release:
    """The release staging holds, which enters prod."""
    path = "environments/staging/release.yaml"
    return rel.parse(play.remote_show(path), path).release


def sign_as(key) -> list[str]:
    return ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c", "commit.gpgsign=true"]


def push(play) -> None:
    git(play.clone, "push", "-q", "origin", "main")


def approve(play, keys, release_id: str):
    result = play.proj.run("approve", "--env", "prod", "--release", release_id,
                           "--key", str(keys["alice"][0]), "--principal", ALICE, "--json")
    assert result.code == 0, result.err
    return result


def test_a_managers_signed_cherry_pick_carrying_the_trailers_is_refused(signed):
    play, keys = signed
    rid = waiting(play).id
    play.pull()
    git(play.clone, "checkout", "-qb", "contrib")
    (play.clone / "README.md").write_text("typo fix\n")
    git(play.clone, "add", "README.md")
    git(play.clone, "commit", "-qm", f"docs: fix a typo\n\nMlops-Approve: {rid}\n"
        "Mlops-Environment: prod\n")
    git(play.clone, "checkout", "-q", "main")
    git(play.clone, *sign_as(keys["alice"][0]), "cherry-pick", "contrib")
    push(play)
    refused(play, "changes files; an approval (`mlops approve`) changes none")


def test_a_signed_empty_commit_with_another_message_is_refused(signed):
    play, keys = signed
    release = waiting(play)
    text = approval_message("prod", release.id, ALICE, release.digest)
    play.pull()
    git(play.clone, *sign_as(keys["alice"][0]), "commit", "-q", "--allow-empty",
        "-m", "chore: bump\n\nUnrelated work.\n\n" + text.split("\n\n", 2)[2])
    push(play)
    refused(play, "its message is not the one `mlops approve` writes")


def test_a_signed_merge_with_the_approval_message_is_refused(signed):
    play, keys = signed
    release = waiting(play)
    play.pull()
    head, tree = git(play.clone, "rev-parse", "HEAD", "HEAD^{tree}").split()
    side = git(play.clone, "commit-tree", tree, "-p", head, "-m", "side")
    merge = git(play.clone, *sign_as(keys["alice"][0]), "commit-tree", "-S", tree, "-p", head,
                "-p", side, "-m", approval_message("prod", release.id, ALICE, release.digest))
    git(play.clone, "reset", "-q", "--hard", merge)
    push(play)
    refused(play, "has 2 parents")


def test_an_approval_of_another_digest_with_the_same_id_is_refused(signed):
    """What a birthday search on the 12-hex id yields: alice approved other content."""
    play, keys = signed
    rid = waiting(play).id
    play.pull()
    git(play.clone, *sign_as(keys["alice"][0]), "commit", "-q", "--allow-empty",
        "-m", approval_message("prod", rid, ALICE, "sha256:" + "0" * 64))
    push(play)
    refused(play, "approves another release with the same id (sha256:000")


def test_an_approval_without_a_digest_no_longer_counts(signed):
    play, keys = signed
    play.pull()
    git(play.clone, *sign_as(keys["alice"][0]), "commit", "-q", "--allow-empty",
        "-m", approval_message("prod", waiting(play).id, ALICE))
    push(play)
    refused(play, "names no release digest (an approval older than digests); approve again")


def test_approve_writes_the_full_digest_promote_checks(signed):
    play, keys = signed
    release = waiting(play)
    done = approve(play, keys, release.id)
    assert done.json["digest"] == release.digest
    message = git(play.remote, "log", "-1", "--format=%B", "main")
    assert f"Mlops-Approve-Digest: {release.digest}" in message
    assert promote(play, *TO_PROD).code == 0
    assert release_of(play, "prod")["approval"]["commit"] == done.json["commit"]


def test_a_rolled_back_release_needs_an_approval_given_after_the_hold(signed, built):
    play, keys = signed
    approve(play, keys, waiting(play).id)
    assert promote(play, *TO_PROD).code == 0
    first = release_of(play, "prod")["id"]
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(play.metrics("n", {**GOOD, "accuracy": 0.96}))).code == 0
    assert promote(play, "--to", "staging", "--from", "dev").code == 0
    second = waiting(play).id
    approve(play, keys, second)
    assert promote(play, *TO_PROD).code == 0
    assert play.proj.run("rollback", "--env", "prod", "--reason", "leaks PII").code == 0
    assert release_of(play, "prod")["id"] == first
    head = play.remote_head()
    result = promote(play, *TO_PROD, "--clear-hold")
    assert result.code == 4 and "given before prod was put on hold" in result.err, result.err
    assert play.remote_head() == head
    approve(play, keys, second)  # a release manager consents again, after the incident
    result = promote(play, *TO_PROD, "--clear-hold", "--json")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["id"] == second and not release_of(play, "prod")["hold"]
