"""mlops.core.revocations: which release a commit revokes, and whether an approval stands."""

from __future__ import annotations

import pytest

from mlops.core.revocations import Revocation, refusal, revoked_by, standing_revocation


@pytest.mark.parametrize("action, subject, trailer, gone", [
    ("rollback", "rollback(prod): release r-aaa (was r-bbb)", "r-bbb", "r-bbb"),
    # Written before Mlops-Revokes: the subject says it.
    ("rollback", "rollback(prod): release r-aaa (was r-bbb)", None, "r-bbb"),
    ("rollout-abort", "canary(prod): abort r-ccc, back to release r-aaa", None, "r-ccc"),
    ("rollback", "rollback(prod): release r-aaa (was none)", None, None),
    # Any commit naming a revocation revokes: a forged one can only refuse more.
    ("promote", "promote(prod): release r-aaa from staging", "r-ddd", "r-ddd"),
    ("promote", "rollback(prod): release r-aaa (was r-bbb)", None, None),
    (None, "canary(prod): abort r-ccc, back to release r-aaa", None, None),
    ("rollback", "rollback(prod): release r-aaa (was r-bbb) and more", None, None),
])
def test_what_a_commit_revokes(action, subject, trailer, gone):
    assert revoked_by(action, subject, trailer) == gone


ANCESTRY = {("rb1", "late"), ("rb1", "later"), ("rb2", "later")}


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


def test_the_refusal_names_the_release_and_the_commit():
    text = refusal(Revocation("0123456789abcdef", "r-1"), "prod")
    assert text.startswith("given before release r-1 was rolled back in prod (commit "
                           "0123456789)"), text
    assert text.endswith("(approve again)")
