"""`mlops.trust`: trust on first use, then only signed changes; the allowed signers in force
at the time of a check. Pure data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlops.errors import ApprovalError
from mlops.trust import Change, TrustState, in_force, settle, signer_lines

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


# -- the allowed signers in force at the time of a check ------------------------------

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()
KEY = "ssh-ed25519 AAAA1 alice's laptop"
PLUS_TWO = timezone(timedelta(hours=2))  # "local" time in these tests: UTC+2


def judged(options: str, commits: bool = True, now: float = NOW):
    """The one line `alice@example.com OPTIONS KEY` as written at `now`, or None."""
    result = in_force((f"alice@example.com {options} {KEY}",), now, commits, PLUS_TWO)
    return result.lines[0] if result.lines else None


@pytest.mark.parametrize("window", [
    'valid-before="20250602"',
    'valid-after="20250601"',
    'valid-after="20250101",valid-before="20260101"',
    'valid-after="20250601140000",valid-before="20250601140001"',  # 12:00:00Z = 14:00 at +2
])
def test_a_line_inside_its_window_is_written_without_it(window):
    """The commit's own date, which its signer writes, then decides nothing."""
    assert judged(window) == f"alice@example.com {KEY}"


@pytest.mark.parametrize("window, why", [
    ('valid-before="20200101"', "its valid-before has passed"),
    ('valid-before="202506011359"', "its valid-before has passed"),  # 11:59Z
    ('valid-after="20250601140001"', "its valid-after has not come yet"),  # 12:00:01Z
    ('valid-after="20300101",valid-before="20310101"', "its valid-after has not come yet"),
])
def test_a_line_outside_its_window_is_left_out_naming_its_principals(window, why):
    result = in_force((f"alice@example.com,al@example.com {window} {KEY}",), NOW, True,
                      PLUS_TWO)
    assert result.lines == () and result.text() == ""
    assert result.left_out == (f"alice@example.com,al@example.com: {why}",)
    assert result.note() == f" (not trusted now: alice@example.com,al@example.com: {why})"


@pytest.mark.parametrize("value, inside", [
    ("20250601120000Z", True),  # the very second: valid-before is inclusive, as in OpenSSH
    ("20250601115959Z", False),
    ("20250601115959z", False),
    ("20250601140000", True),  # local (+2): 12:00:00Z
    ("20250601135959", False),
    ("202506011200Z", True),
    ("202506011159Z", False),
    ("20250602Z", True),
    ("20250601Z", False),  # a date alone is its midnight
    ("20250601", False),
])
def test_times_in_each_openssh_format_utc_with_z_else_local(value, inside):
    kept = judged(f'valid-before="{value}"')
    assert kept == (f"alice@example.com {KEY}" if inside else None)


def test_an_unquoted_value_and_any_case_of_the_option_name_are_judged_alike():
    """OpenSSH matches option names in any case: an upper-case valid-before must not slip
    through to git, which would judge it at the commit's date."""
    assert judged("valid-before=20200101") is None
    assert judged('VALID-BEFORE="20200101"') is None
    assert judged("Valid-After=20200101") == f"alice@example.com {KEY}"


@pytest.mark.parametrize("window", [
    'valid-before="2026-01-01"',
    'valid-before="20261301"',  # month 13
    'valid-before="202601011"',  # nine digits
    'valid-before="20260101T"',
    'valid-before=""',
    "valid-before",
    'valid-before="19700101Z"',  # the epoch: OpenSSH refuses it
    'valid-before="20260101",valid-before="20270101"',
    'valid-after="20260101",valid-before="20250101"',
    'valid-before="20260101',  # an open quote
    'valid-before="20260101",',  # an empty option
    'valid-after="\u0662\u0660\u0662\u0660\u0660\u0661\u0660\u0661"',  # not ASCII digits
])
def test_a_window_that_does_not_parse_leaves_the_line_out(window):
    assert judged(window) is None
    assert judged(window, commits=False) is None


@pytest.mark.parametrize("options, written", [
    ('namespaces="git,file",valid-before="20260101"', 'namespaces="git,file"'),
    ('valid-after="20250101",namespaces="git"', 'namespaces="git"'),
    ('namespaces="git"', 'namespaces="git"'),
])
def test_other_options_are_kept(options, written):
    assert judged(options) == f"alice@example.com {written} {KEY}"


def test_a_line_without_options_is_written_as_it_is():
    lines = (f"alice@example.com {KEY}", "*@example.com ecdsa-sha2-nistp256 AAAA2")
    assert in_force(lines, NOW, True).lines == lines


@pytest.mark.parametrize("options, for_provenance", [
    ("cert-authority", "cert-authority"),
    ('cert-authority,valid-before="20260101"', "cert-authority"),
    ('namespaces="git",Cert-Authority', 'namespaces="git",Cert-Authority'),
])
def test_cert_authority_lines_are_left_out_for_commits_only(options, for_provenance):
    """git would check a certificate's validity at the commit's own date; ssh-keygen -Y
    verify (provenance) checks it now, so there the line stays."""
    line = f"*@example.com {options} {KEY}"
    for_commits = in_force((line,), NOW, True)
    assert for_commits.lines == ()
    assert "a cert-authority line, not used for approvals" in for_commits.left_out[0]
    assert in_force((line,), NOW, False).lines == (f"*@example.com {for_provenance} {KEY}",)


def test_a_window_left_where_this_module_cannot_read_it_fails_closed():
    """A key type this module does not know is read as options: still never written with
    a window."""
    assert in_force((f'alice@example.com valid-before="20200101" {KEY}',
                     'bob@example.com x-new-type AAAA valid-before="20200101"'),
                    NOW, True).lines == ()


def test_the_trust_state_keeps_its_lines_as_written():
    """Whether the trust root changed is decided on the lines as committed, whatever is
    in force now."""
    text = f'alice@example.com valid-before="20200101" {KEY}\n'
    state = TrustState.of(text, ["alice@example.com"], [])
    assert state.signers == (f'alice@example.com valid-before="20200101" {KEY}',)
    assert state.signers_at(NOW, commits=True).lines == ()
    assert state != TrustState.of(f"alice@example.com {KEY}\n", ["alice@example.com"], [])
