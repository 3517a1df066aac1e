"""The decision record as a type: parsed once, with every field it uses checked."""

from __future__ import annotations

import json

import pytest

from mlops import trailers
from mlops.core.decision import Decision, rollout_message
from mlops.errors import ConfigError
from mlops.release import Image, Release

GOOD = {"env": "prod", "release": "r-1", "result": "pass", "step": 1, "percent": 10,
        "final": False, "finished_at": 1700000000.0, "reasons": [],
        "measurements": [{"metric": "error-rate", "value": 0.0, "baseline": None}],
        "revision": "serve-00002", "baseline_revision": "serve-00001"}


def test_a_record_parses_to_typed_fields_and_dumps_as_written():
    decision = Decision.parse(json.loads(json.dumps(GOOD)), "f.json", "prod")
    assert (decision.release, decision.result, decision.step, decision.percent) == (
        "r-1", "pass", 1, 10)
    assert decision.dump() == GOOD and dict(decision) == GOOD
    assert decision["revision"] == "serve-00002" and decision.get("missing") is None


@pytest.mark.parametrize(("change", "problem"), [
    ({"env": "staging"}, "is not an analysis of prod"),
    ({"result": 1}, "malformed: release and result must be strings"),
    ({"finished_at": float("nan")}, "malformed: step, percent and finished_at must be numbers"),
    ({"reasons": "one"}, "malformed: reasons must be a list of strings"),
    ({"measurements": [{"value": "high"}]}, "malformed: measurements must be a list"),
    ({"stopped_early": True}, "malformed: a record that stopped early must say why"),
])
def test_a_malformed_record_is_one_line_naming_the_file(change, problem):
    with pytest.raises(ConfigError, match=f"^analysis record f.json .*{problem}"):
        Decision.parse({**GOOD, **change}, "f.json", "prod")


def test_a_step_commit_carries_the_split_baseline_and_analysis():
    release = Release("a" * 40, {"serve": Image("r/serve", "sha256:" + "1" * 64)})
    state = {"state": "canary", "percent": 50, "step": 2, "steps": [10, 50],
             "baseline": "r-0"}
    decision = Decision.parse(GOOD, "f.json", "prod")
    how = rollout_message("rollout-step", "prod", release, state, decision=decision)
    assert how.subject == f"canary(prod): release {release.id} at 50% (step 2/2)"
    assert (trailers.CANARY, "50") in how.extra and (trailers.BASELINE, "r-0") in how.extra
    assert any(k == trailers.ANALYSIS and v.startswith("pass at 10%") for k, v in how.extra)
