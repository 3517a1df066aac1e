"""`mlops.trust.settle`: trust on first use, then only signed changes, as pure data."""

from __future__ import annotations

import pytest

from mlops.errors import ApprovalError
from mlops.trust import Change, TrustState, settle, signer_lines

ALICE = TrustState.of("alice@example.com ssh-ed25519 AAAA1\n", ["alice@example.com"], [])
WITH_CAROL = TrustState.of("alice@example.com ssh-ed25519 AAAA1\n"
                           "carol@example.com ssh-ed25519 AAAA3\n",
                           ["alice@example.com", "carol@example.com"], [])
EMPTY = TrustState.of("# no keys yet\n", [], [])


def signatures(table):
    """A signer_of callback: which principal signed each commit (None: unsigned)."""
    return lambda sha, before: (table.get(sha), "no signature")


def test_first_commit_that_sets_anything_is_trusted_on_first_use():
    root = settle([Change("a" * 40, EMPTY), Change("b" * 40, ALICE)], signatures({}))
    assert root.state == ALICE and "since commit bbbbbbbbbb" in root.origin


def test_nothing_set_yet_is_an_empty_root():
    root = settle([Change("a" * 40, EMPTY)], signatures({}))
    assert root.state.empty() and "no allowed signers" in root.origin


def test_a_change_signed_by_a_release_manager_of_the_state_before_counts():
    changes = [Change("a" * 40, ALICE), Change("b" * 40, WITH_CAROL)]
    assert settle(changes, signatures({"b" * 40: "alice@example.com"})).state == WITH_CAROL


@pytest.mark.parametrize("signer, why", [
    (None, "not signed by a trusted key (no signature)"),
    ("bob@example.com", "which bob@example.com signed, who is not a release manager"),
])
def test_an_untrusted_change_in_force_is_refused_naming_it(signer, why):
    changes = [Change("a" * 40, ALICE), Change("b" * 40, WITH_CAROL)]
    with pytest.raises(ApprovalError) as info:
        settle(changes, signatures({"b" * 40: signer}))
    assert "changed by commit bbbbbbbbbb" in info.value.message and why in info.value.message
    assert info.value.exit_code == 4


def test_the_new_key_cannot_sign_its_own_admission():
    """The callback is asked with the state *before* the change: carol is not in it."""
    asked = []

    def signer_of(sha, before):
        asked.append(before)
        return (None, "No principal matched")

    with pytest.raises(ApprovalError):
        settle([Change("a" * 40, ALICE), Change("b" * 40, WITH_CAROL)], signer_of)
    assert asked == [ALICE]


def test_a_revert_to_the_trusted_state_clears_the_untrusted_change():
    changes = [Change("a" * 40, ALICE), Change("b" * 40, WITH_CAROL), Change("c" * 40, ALICE)]
    assert settle(changes, signatures({})).state == ALICE


def test_an_unreadable_state_is_never_trusted_even_signed():
    changes = [Change("a" * 40, ALICE), Change("b" * 40, None)]
    with pytest.raises(ApprovalError, match="unreadable"):
        settle(changes, signatures({"b" * 40: "alice@example.com"}))


def test_emptying_the_root_is_a_change_like_any_other():
    with pytest.raises(ApprovalError):
        settle([Change("a" * 40, ALICE), Change("b" * 40, EMPTY)], signatures({}))


def test_comments_and_spacing_are_not_changes():
    respaced = TrustState.of("# the team\nalice@example.com   ssh-ed25519 AAAA1  \n\n",
                             ["alice@example.com"], [])
    assert respaced == ALICE
    assert signer_lines(" # x\n a  b \n") == ("a b",)
