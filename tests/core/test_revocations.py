"""mlops.core.revocations: which commits revoke a release, and whether an approval stands."""

from __future__ import annotations

import pytest

from mlops.core.revocations import (
    Revocation,
    from_holds,
    refusal,
    rolled_back_since,
    standing_revocation,
)


def test_a_revocation_is_a_record_left_holding_rolled_back_from():
    holds = [
        ("rb2", {"reason": "x", "rolled_back_from": "r-2", "since": "..."}),
        ("p3", None),  # a promotion: no hold
        ("edit", {"reason": "by hand"}),  # a hold that names no release revokes nothing
        ("odd", {"rolled_back_from": 5}),
        ("empty", {"rolled_back_from": ""}),
        ("text", "not a mapping"),
        ("rb1", {"rolled_back_from": "r-1"}),
    ]
    assert from_holds(holds) == [Revocation("rb2", "r-2"), Revocation("rb1", "r-1")]


ANCESTRY = {("p1", "rb1"), ("p1", "late"), ("rb1", "late"), ("rb1", "later"),
            ("rb2", "later"), ("p1", "later"), ("late", "p1b"), ("rb1", "p1b"), ("p1", "p1b")}


def is_ancestor(older: str, newer: str) -> bool:
    return older == newer or (older, newer) in ANCESTRY


@pytest.mark.parametrize("approval, release, standing", [
    ("late", "r-1", None),  # given after the only rollback of r-1
    ("early", "r-1", "rb1"),  # given before it
    ("late", "r-2", "rb2"),  # after r-1's rollback, but not after r-2's
    ("later", "r-2", None),
    ("beside", "r-1", "rb1"),  # on a branch beside the rollback: not after it
    ("early", "r-3", None),  # never rolled back
])
def test_an_approval_stands_only_if_it_descends_from_every_revocation(approval, release,
                                                                       standing):
    found = [Revocation("rb2", "r-2"), Revocation("rb1", "r-1")]
    result = standing_revocation(approval, release, found, is_ancestor)
    assert (result.sha if result else None) == standing


@pytest.mark.parametrize("entered, release, since", [
    ("p1", "r-1", True),  # r-1 entered at p1 and was rolled back at rb1
    ("p1b", "r-1", False),  # entered again after that rollback
    ("p1", "r-2", False),  # another release's rollback says nothing about r-1
    ("rb1", "r-1", False),  # a revocation is not after itself
])
def test_a_release_is_rolled_back_since_it_entered(entered, release, since):
    assert rolled_back_since(entered, release, [Revocation("rb1", "r-1")], is_ancestor) is since


def test_the_refusal_names_the_release_and_the_commit():
    text = refusal(Revocation("0123456789abcdef", "r-1"), "prod")
    assert text.startswith("given before release r-1 was rolled back in prod (commit "
                           "0123456789)"), text
    assert text.endswith("(approve again)")
