"""The trust root is settled over every parent of the branch's history, not the first only.

A push needs only to be a fast-forward: the old tip may be any parent of the new
one. A first parent that is a new root (trusted on first use), or a branch cut
before a signed change, must not decide who is trusted. Real remotes, real keys.
"""

from __future__ import annotations

import pytest

from mlops.errors import ApprovalError
from mlops.trust import Change, TrustState, settle
from tests.commands.conftest import promote, release_of
from tests.commands.test_trust_root import TO_PROD, approve, team, trust_carol
from tests.conftest import git
from tests.support.promotion import push_approval

pytestmark = pytest.mark.usefixtures("docker_engine")
__all__ = ["team"]  # the fixture, imported for its name


def sign(keys, who: str) -> list[str]:
    return ["-c", "gpg.format=ssh", "-c", f"user.signingkey={keys[who][0]}"]


def trust_only_carol(play, keys) -> str:
    """The tree of the current clone with carol as the only key and release manager."""
    c = play.clone
    (c / ".mlops/allowed_signers").write_text(f"carol@example.com {keys['carol'][1]}\n")
    config = c / "mlops.yaml"
    config.write_text(config.read_text().replace("[alice@example.com]", "[carol@example.com]"))
    git(c, "add", "-A")
    return git(c, "write-tree")


def push_fast_forward(play, first_parent: str, second_parent: str, tree: str) -> None:
    c = play.clone
    merge = git(c, "commit-tree", tree, "-p", first_parent, "-p", second_parent, "-m", "Merge")
    git(c, "reset", "-q", "--hard", merge)
    git(c, "push", "-q", "origin", "main")  # no --force: the old tip is the second parent


def refused(play, keys, who: str, why: str = "was changed by commit") -> None:
    head = play.remote_head()
    own = play.proj.run("approve", "--env", "prod", "--release",
                        release_of(play, "staging")["id"], "--key", str(keys[who][0]),
                        "--principal", f"{who}@example.com")  # checked as promote checks
    assert own.code == 4 and why in own.err, own.err
    assert play.remote_head() == head
    push_approval(play, "prod", "staging", f"{who}@example.com", keys[who][0])  # by hand
    head = play.remote_head()
    result = promote(play, *TO_PROD)
    assert result.code == 4 and why in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert play.remote_head() == head


def test_a_merge_whose_first_parent_is_a_new_root_trusts_nobody_new(team):
    """An orphan commit that lists carol, merged over the old tip as a fast-forward: the
    first-parent history starts at the orphan, but alice's history still counts."""
    play, keys = team
    play.pull()
    old_tip = git(play.clone, "rev-parse", "HEAD")
    tree = trust_only_carol(play, keys)
    orphan = git(play.clone, "commit-tree", tree, "-m", "import")
    push_fast_forward(play, orphan, old_tip, tree)
    refused(play, keys, "carol", "joins histories trusting different states")


def test_a_new_root_without_trust_files_then_a_merge_that_adds_them(team):
    play, keys = team
    play.pull()
    c = play.clone
    old_tip = git(c, "rev-parse", "HEAD")
    empty = git(c, "hash-object", "-w", "-t", "tree", "/dev/null")
    orphan = git(c, "commit-tree", empty, "-m", "start over")
    push_fast_forward(play, orphan, old_tip, trust_only_carol(play, keys))
    refused(play, keys, "carol")


def test_a_branch_cut_before_a_signed_change_cannot_undo_it(team):
    """carol is trusted (signed by alice), then removed (signed by alice); a merge whose
    first parent is the branch from when carol was trusted keeps the old state: refused."""
    play, keys = team
    trust_carol(play, keys, signer="alice")
    play.pull()
    c = play.clone
    with_carol = git(c, "rev-parse", "HEAD")
    git(c, *sign(keys, "alice"), "revert", "--no-edit", "-S", "HEAD")  # carol removed
    git(c, "push", "-q", "origin", "main")
    tree = git(c, "rev-parse", f"{with_carol}^{{tree}}")
    branch = git(c, "commit-tree", tree, "-p", with_carol, "-m", "wip")
    push_fast_forward(play, branch, git(c, "rev-parse", "HEAD"), tree)
    refused(play, keys, "carol")


def test_a_signed_change_on_a_branch_counts_through_an_unsigned_merge(team):
    """The legitimate shape of the same history: alice signs the change on a branch and
    anybody merges it; an older branch merged afterwards changes nothing."""
    play, keys = team
    play.pull()
    c = play.clone
    git(c, "checkout", "-qb", "older")
    (c / "NOTES.md").write_text("unrelated\n")
    git(c, "add", "-A")
    git(c, "commit", "-qm", "notes")
    git(c, "checkout", "-q", "main")
    git(c, "checkout", "-qb", "trust")
    signers = c / ".mlops/allowed_signers"
    signers.write_text(signers.read_text() + f"carol@example.com {keys['carol'][1]}\n")
    config = c / "mlops.yaml"
    config.write_text(config.read_text().replace(
        "[alice@example.com]", "[alice@example.com, carol@example.com]"))
    git(c, "add", "-A")
    git(c, *sign(keys, "alice"), "commit", "-q", "-S", "-m", "trust carol")
    git(c, "checkout", "-q", "main")
    git(c, "merge", "-q", "--no-ff", "--no-edit", "trust")
    git(c, "merge", "-q", "--no-ff", "--no-edit", "older")
    git(c, "push", "-q", "origin", "main")
    approve(play, keys, "carol")
    result = promote(play, *TO_PROD, "--json")
    assert result.code == 0, result.err
    assert result.json["approver"] == "carol@example.com"


# -- the rule as pure data ------------------------------------------------------------

ALICE = TrustState.of("alice@example.com ssh-ed25519 AAAA1\n", ["alice@example.com"], [])
MALLORY = TrustState.of("mallory@example.com ssh-ed25519 AAAA2\n", ["mallory@example.com"], [])
BOTH = TrustState.of("alice@example.com ssh-ed25519 AAAA1\nmallory@example.com ssh-ed25519 "
                     "AAAA2\n", ["alice@example.com", "mallory@example.com"], [])


def by(table):
    return lambda sha, before: (table.get(sha), "no signature")


def test_pure_two_roots_need_a_signature_of_each():
    history = [Change("a" * 40, ALICE, ()), Change("o" * 40, MALLORY, ()),
               Change("m" * 40, MALLORY, ("o" * 40, "a" * 40))]
    with pytest.raises(ApprovalError, match="joins histories"):
        settle(history, by({"m" * 40: "mallory@example.com"}))
    assert settle(history, by({"m" * 40: "alice@example.com"})).state == MALLORY


def test_pure_the_newer_of_two_related_states_is_the_one_before_a_merge():
    history = [Change("a" * 40, BOTH, ()), Change("b" * 40, ALICE, ("a" * 40,)),
               Change("m" * 40, BOTH, ("a" * 40, "b" * 40))]
    with pytest.raises(ApprovalError, match="mallory@example.com signed, who is not"):
        settle(history, by({"b" * 40: "alice@example.com", "m" * 40: "mallory@example.com"}))
    merged = [*history[:2], Change("m" * 40, ALICE, ("a" * 40, "b" * 40))]
    assert settle(merged, by({"b" * 40: "alice@example.com"})).state == ALICE


# -- H1: which environments need an approval is part of the trust root ----------------


def edit_config(play, old: str, new: str, signer: str | None = None, keys=None) -> None:
    play.pull()
    config = play.clone / "mlops.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))
    signing = [*sign(keys, signer), "commit", "-S"] if signer else ["commit"]
    git(play.clone, *signing, "-qam", "tidy config")
    git(play.clone, "push", "-q", "origin", "main")


PROD_GATED = "    approval: true\n    gates:\n      - metric: roc_auc"
PROD_OPEN = "    gates:\n      - metric: roc_auc"


def test_an_unsigned_commit_cannot_drop_an_approval(team):
    play, keys = team
    edit_config(play, PROD_GATED, PROD_OPEN)
    head = play.remote_head()
    result = promote(play, *TO_PROD)
    assert result.code == 4 and "was changed by commit" in result.err, result.err
    assert play.remote_head() == head


def test_a_release_manager_may_drop_an_approval(team):
    play, keys = team
    edit_config(play, PROD_GATED, PROD_OPEN, signer="alice", keys=keys)
    result = promote(play, *TO_PROD, "--json")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["approval"] is None


def test_an_unsigned_commit_may_add_an_approval_but_not_take_it_back(team):
    play, keys = team
    edit_config(play, "  - name: staging\n", "  - name: staging\n    approval: true\n")
    approve(play, keys, "alice")
    planned = promote(play, *TO_PROD, "--plan")
    assert planned.code == 0, planned.err  # tightening is no unsigned trust change
    edit_config(play, "  - name: staging\n    approval: true\n", "  - name: staging\n")
    result = promote(play, *TO_PROD)
    assert result.code == 4 and "was changed by commit" in result.err, result.err


def test_a_pinned_root_gates_what_the_branch_no_longer_gates(team, tmp_path):
    play, keys = team
    root = tmp_path / "trust-root.yaml"
    root.write_text("allowed_signers: |\n"
                    f"  alice@example.com {keys['alice'][1]}\n"
                    "release_managers: [alice@example.com]\n"
                    "approval_environments: [prod]\n")
    edit_config(play, PROD_GATED, PROD_OPEN)
    refused = promote(play, *TO_PROD, "--trust-root", str(root))
    assert refused.code == 4 and "needs a release manager's signed approval" in refused.err
    approve(play, keys, "alice", "--trust-root", str(root))
    result = promote(play, *TO_PROD, "--trust-root", str(root), "--json")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["approval"]["approver"] == "alice@example.com"


def test_pure_gating_more_needs_no_signature_gating_less_does():
    gated = TrustState.of("alice@example.com ssh-ed25519 AAAA1\n", ["alice@example.com"], [],
                          ["prod"])
    history = [Change("a" * 40, ALICE, ()), Change("b" * 40, gated, ("a" * 40,))]
    assert settle(history, by({})).state == gated
    opened = [*history, Change("c" * 40, ALICE, ("b" * 40,))]
    with pytest.raises(ApprovalError, match="cccccccccc, which is not signed"):
        settle(opened, by({}))
    assert settle(opened, by({"c" * 40: "alice@example.com"})).state == ALICE
