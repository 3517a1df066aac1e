"""The trust root: changed on the branch only by a signed commit, or pinned outside it.

The attacks (an unsigned commit that trusts a new key, one signed by a
listed signer who is no release manager, one signed by the new key itself)
are cases in tests/bad_inputs/test_approvals.py; here are the ways a team
legitimately changes who is trusted, each on a real remote with real keys.
"""

from __future__ import annotations

import pytest

from tests.commands.conftest import promote, release_of, to_staging
from tests.conftest import git
from tests.support.promotion import Playground, push_approval, repo_files, ssh_key

pytestmark = pytest.mark.usefixtures("docker_engine")

TO_PROD = ("--to", "prod", "--from", "staging")


@pytest.fixture
def team(project, built, tmp_path):
    """alice is the release manager trusted since the first commit; carol is not listed."""
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "carol")}
    files = {**repo_files(built[0]),
             ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n"}
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    return play, keys


def trust_carol(play, keys, signer: str | None) -> None:
    """One commit that lists carol's key and makes her a release manager."""
    play.pull()
    signers = play.clone / ".mlops/allowed_signers"
    signers.write_text(signers.read_text() + f"carol@example.com {keys['carol'][1]}\n")
    config = play.clone / "mlops.yaml"
    config.write_text(config.read_text().replace(
        "release_managers: [alice@example.com]",
        "release_managers: [alice@example.com, carol@example.com]"))
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={keys[signer][0]}"] if signer else []
    git(play.clone, "add", "-A")
    git(play.clone, *sign, "commit", "-q", *(["-S"] if signer else []), "-m", "trust carol")
    git(play.clone, "push", "-q", "origin", "main")


def approve(play, keys, who: str, *more: str):
    result = play.proj.run("approve", "--env", "prod", "--release",
                           release_of(play, "staging")["id"], "--key", str(keys[who][0]),
                           "--principal", f"{who}@example.com", *more)
    assert result.code == 0, result.err


def test_a_change_signed_by_a_release_manager_takes_effect(team):
    play, keys = team
    trust_carol(play, keys, signer="alice")
    approve(play, keys, "carol")
    result = promote(play, *TO_PROD, "--json")
    assert result.code == 0, result.err
    assert result.json["approver"] == "carol@example.com"


def test_an_unsigned_change_blocks_approvals_until_it_is_reverted(team):
    play, keys = team
    approve(play, keys, "alice")
    trust_carol(play, keys, signer=None)
    head = play.remote_head()
    blocked = promote(play, *TO_PROD)
    assert blocked.code == 4 and "was changed by commit" in blocked.err, blocked.err
    again = play.proj.run("approve", "--env", "prod", "--release",
                          release_of(play, "staging")["id"], "--key", str(keys["alice"][0]),
                          "--principal", "alice@example.com")  # checked as promote checks
    assert again.code == 4 and "was changed by commit" in again.err, again.err
    assert play.remote_head() == head

    play.pull()
    git(play.clone, "revert", "--no-edit", "HEAD")  # the trust change, above the approval
    git(play.clone, "push", "-q", "origin", "main")
    result = promote(play, *TO_PROD, "--json")
    assert result.code == 0, result.err
    assert result.json["approver"] == "alice@example.com"


def test_a_pinned_root_ignores_the_branch(team, tmp_path, monkeypatch):
    """Pinned, carol counts although the branch never listed her, and alice (listed on the
    branch only) does not: the branch's files are not read at all."""
    play, keys = team
    root = tmp_path / "trust-root.yaml"
    root.write_text("allowed_signers: |\n"
                    f"  carol@example.com {keys['carol'][1]}\n"
                    "release_managers: [carol@example.com]\n")
    approve(play, keys, "alice")
    by_flag = promote(play, *TO_PROD, "--trust-root", str(root))
    assert by_flag.code == 4 and "No principal matched" in by_flag.err, by_flag.err

    approve(play, keys, "carol", "--trust-root", str(root))  # checked against the pinned root
    monkeypatch.setenv("MLOPS_TRUST_ROOT", str(root))
    result = promote(play, *TO_PROD, "--json")
    assert result.code == 0, result.err
    assert result.json["approver"] == "carol@example.com"


def test_a_pinned_root_survives_an_unsigned_branch_change(team, tmp_path):
    play, keys = team
    root = tmp_path / "trust-root.yaml"
    root.write_text("allowed_signers: |\n"
                    f"  alice@example.com {keys['alice'][1]}\n"
                    "release_managers: [alice@example.com]\n")
    trust_carol(play, keys, signer=None)
    push_approval(play, "prod", "staging", "carol@example.com", keys["carol"][0])
    refused = promote(play, *TO_PROD, "--trust-root", str(root))
    assert refused.code == 4 and "No principal matched" in refused.err, refused.err
    approve(play, keys, "alice", "--trust-root", str(root))
    result = promote(play, *TO_PROD, "--trust-root", str(root), "--json")
    assert result.code == 0, result.err
    assert result.json["approver"] == "alice@example.com"



def signed_change(play, key, edits: dict[str, tuple[str, str]], message: str,
                  monkeypatch, date: str | None = None) -> None:
    """One commit signed with `key`, dated `date` (author and committer, as a signer can
    write them), that makes each {path: (old, new)} replacement."""
    play.pull()
    for path, (old, new) in edits.items():
        target = play.clone / path
        target.write_text(target.read_text().replace(old, new))
    git(play.clone, "add", "-A")
    with monkeypatch.context() as m:
        for name in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE") if date else ():
            m.setenv(name, date)
        git(play.clone, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit",
            "-q", "-S", "-m", message)
    git(play.clone, "push", "-q", "origin", "main")


def test_a_retired_key_cannot_change_the_trust_root_by_backdating(team, tmp_path,
                                                                  monkeypatch):
    """carol retires alice's key (valid-before 2020). alice then signs a commit dated 2019
    that trusts mallory: `git verify-commit` alone would judge her key at that date and
    let the change count. It does not: every approval is refused, naming the commit."""
    play, keys = team
    trust_carol(play, keys, signer="alice")
    signed_change(play, keys["carol"][0], {".mlops/allowed_signers": (
        "alice@example.com ssh-ed25519",
        'alice@example.com valid-before="20200101" ssh-ed25519')}, "retire alice",
        monkeypatch)
    mallory = ssh_key(tmp_path, "mallory")
    signed_change(play, keys["alice"][0], {
        ".mlops/allowed_signers": ("carol@example.com", f"mallory@example.com {mallory[1]}\n"
                                                        "carol@example.com"),
        "mlops.yaml": ("carol@example.com]", "carol@example.com, mallory@example.com]"),
    }, "trust mallory", monkeypatch, date="2019-06-01T00:00:00Z")
    assert git(play.remote, "log", "-1", "--format=%cI", "main").startswith("2019-06-01")
    push_approval(play, "prod", "staging", "mallory@example.com", mallory[0])
    head = play.remote_head()
    blocked = promote(play, *TO_PROD)
    assert blocked.code == 4, blocked.err
    backdated = git(play.remote, "log", "--format=%H", "--grep=^trust mallory", "main")
    assert f"was changed by commit {backdated[:10]}" in blocked.err, blocked.err
    assert "alice@example.com: its valid-before has passed" in blocked.err, blocked.err
    assert play.remote_head() == head
