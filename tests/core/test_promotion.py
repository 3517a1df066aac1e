"""The pure promotion core: every environment change is decided by `decide`, or refused."""

from __future__ import annotations

import pytest

from mlops import release as rel
from mlops import trailers
from mlops.core import promotion as core
from mlops.core.promotion import Action, Message, Source, Transition
from mlops.errors import ApprovalError, GateFailed

DIGEST = "sha256:" + "ab" * 32
RELEASE = rel.Release(source_commit="c" * 40,
                      images={"serve": rel.Image("127.0.0.1:5000/mlops/serve", DIGEST)},
                      pipelines={"training": "training-0123456789"})
PASS = {"gate": "accuracy-threshold", "result": "pass", "detail": "accuracy 0.9 >= 0.8"}
FAIL = {"gate": "accuracy-vs-champion", "result": "fail", "detail": "change -0.1"}
APPROVAL = {"approver": "rm@example.com", "commit": "d" * 40}


def transition(**changes) -> Transition:
    base = {"action": Action.PROMOTE, "env": "prod", "release": RELEASE,
            "source": Source.environment("staging"), "gates": (PASS,)}
    return Transition(**{**base, **changes})


def trailer_values(message: str, key: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in message.splitlines()
            if line.startswith(f"{key}: ")]


@pytest.mark.parametrize("text", ["build", "rollback", "staging", "prod-eu"])
def test_a_source_reads_back_as_written(text):
    assert str(Source.parse(text)) == text


def test_only_the_sentinels_are_not_environments():
    assert Source.parse("build") == core.BUILD and not core.BUILD.is_environment
    assert Source.parse("rollback") == core.ROLLBACK and core.ROLLBACK.env is None
    assert Source.parse("dev").is_environment and Source.parse("dev").env == "dev"


def test_a_passing_promotion_becomes_one_record_pins_and_message():
    change = core.decide(transition())
    assert change.record == rel.EnvRecord("prod", RELEASE, "staging", (PASS,))
    assert change.pins == {"serve": ("127.0.0.1:5000/mlops/serve", DIGEST)}
    assert change.message.startswith(f"promote(prod): release {RELEASE.id} from staging")
    assert trailer_values(change.message, trailers.FROM) == ["staging"]
    assert trailer_values(change.message, trailers.APPROVER) == []


def test_a_failed_gate_is_refused_with_the_first_failure():
    with pytest.raises(GateFailed, match=r"^1 gate\(s\) failed; accuracy-vs-champion: "):
        core.decide(transition(gates=(PASS, FAIL)))


def test_a_gate_without_a_result_counts_as_failed():
    with pytest.raises(GateFailed, match="soak"):
        core.decide(transition(gates=({"gate": "soak", "detail": "no data"},)))


def test_an_approval_gated_change_without_an_approval_is_refused_whatever_the_caller_did():
    with pytest.raises(ApprovalError, match=f"prod needs a release manager's signed approval "
                                            f"of {RELEASE.id}"):
        core.decide(transition(needs_approval=True))
    with pytest.raises(ApprovalError):
        core.decide(transition(needs_approval=True, approval={"commit": "d" * 40}))


def test_gates_are_judged_before_the_approval():
    with pytest.raises(GateFailed):
        core.decide(transition(gates=(FAIL,), needs_approval=True))


def test_an_approval_is_recorded_and_named_in_the_trailers():
    change = core.decide(transition(needs_approval=True, approval=APPROVAL))
    assert change.record.approval == APPROVAL
    assert change.approver == "rm@example.com"
    assert trailer_values(change.message, trailers.APPROVER) == ["rm@example.com"]


def test_a_canary_step_keeps_the_earlier_approval_but_does_not_claim_it():
    state = {"state": "canary", "percent": 50, "step": 2, "steps": [10, 50],
             "baseline": "r-0"}
    change = core.decide(transition(action=Action.ROLLOUT_STEP, gates=(FAIL,), gated=False,
                                    kept_approval=APPROVAL, rollout=state))
    assert change.record.approval == APPROVAL and change.record.rollout == state
    assert change.record.gates == (FAIL,)  # the gates the release entered with, as recorded
    assert trailer_values(change.message, trailers.APPROVER) == []


def test_a_rollback_records_its_hold_and_source():
    hold = {"reason": "bad canary", "rolled_back_from": "r-1", "since": "2026-12-05T00:00:00Z"}
    change = core.decide(transition(action=Action.ROLLBACK, source=core.ROLLBACK, gates=(),
                                    hold=hold),
                         Message(hold_note="set", previous="r-1"))
    assert change.record.hold == hold and change.record.promoted_from == "rollback"
    assert change.message.startswith(f"rollback(prod): release {RELEASE.id} (was r-1)")
    assert trailer_values(change.message, trailers.HOLD) == ["set"]


def test_a_hold_refuses_until_cleared():
    held = rel.EnvRecord("prod", RELEASE, "rollback", hold={"reason": "rollback from r-1"})
    with pytest.raises(GateFailed, match=r"on hold \(rollback from r-1\)"):
        core.refuse_hold(held, "prod", clear_hold=False)
    core.refuse_hold(held, "prod", clear_hold=True)
    core.refuse_hold(None, "prod", clear_hold=False)
