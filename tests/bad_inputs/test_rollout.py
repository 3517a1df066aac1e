"""Canary rollouts: forged or stale analyses, forged approvals at 100%, and canaries that
cannot start, each refused with its exit code and nothing pushed.

The `canary` world's prod is at its last step (50% of [10, 50]): the next
`rollout promote` needs a passing analysis of exactly that step and release,
and a release manager's signed approval.
"""

from __future__ import annotations

import time

from tests.bad_inputs.conftest import CANARY, decision, mlops
from tests.bad_inputs.corpus import Case, check, nothing, params, with_input
from tests.bad_inputs.test_approvals import forge

PROMOTE = ["rollout", "promote", "--env", "prod", "--analysis", "{base}/decision.json"]
NEEDS = "prod needs a release manager's signed approval of r-"
ISVC = "environments/base/inferenceservice.yaml"
PROM = {"MLOPS_PROMETHEUS_URL": "http://127.0.0.1:9"}


def _analysis(**changes):
    """A setup writing `{base}/decision.json`: a passing analysis of the canary now, changed."""
    return lambda world: decision(world.clone, path=world.base / "decision.json", **changes)


def _then(*steps):
    def run(world):
        for step in steps:
            step(world)
    return run


def _canary_config(world):
    world.edit("mlops.yaml", "    approval: true\n", "    approval: true\n" + CANARY)


def _mode(annotation: str):
    old = "    serving.kserve.io/deploymentMode: Knative\n"
    return _then(_canary_config, lambda w: w.edit(ISVC, old, annotation))


def _newer_release_in_staging(world):
    world.input("m.json", '{"accuracy": 0.96, "f1": 0.94, "roc_auc": 0.97}')
    mlops(world.clone, "promote", "--to", "staging", "--from", "dev",
          "--metrics", str(world.base / "m.json"))
    world.git("pull", "-q", "--ff-only", "origin", "main")


def _held(world):
    """A hold on prod (outside the release id, so any hand may set one)."""
    world.edit("environments/prod/release.yaml", "hold: null", "hold: {reason: errors at 50%}")


def _step_by_hand(world):
    world.edit("environments/prod/release.yaml", "  step: 2\n", "  step: two\n")
    decision(world.clone, path=world.base / "decision.json")


def _step_of_100_by_hand(world):
    # A step of 100 would take the canary to 100% as a plain step, with no approval.
    world.edit("environments/prod/release.yaml", "  step: 2\n", "  step: 1\n")
    world.edit("environments/prod/release.yaml", "- 50\n", "- 100\n")
    decision(world.clone, path=world.base / "decision.json")


ANALYSES = [
    Case("promote-without-analysis", "canary", nothing, ["rollout", "promote", "--env", "prod"],
         3, "no analysis of the canary in prod yet; run `mlops rollout analyze --env prod`"),
    Case("analysis-failed", "canary", _analysis(result="fail", reasons=["error-rate: 0.3"]),
         PROMOTE, 3, "did not pass (fail): error-rate: 0.3"),
    Case("analysis-inconclusive", "canary", _analysis(result="inconclusive"), PROMOTE, 3,
         "did not pass (inconclusive)"),
    Case("analysis-too-old", "canary", _analysis(finished_at=time.time() - 7200), PROMOTE, 3,
         "is older than 60 minutes"),
    Case("analysis-from-the-future", "canary",
         lambda w: decision(w.clone, path=w.base / "decision.json",
                            finished_at=time.time() + 10 * 365 * 86400), PROMOTE, 3,
         "is dated in the future"),
    Case("analysis-of-another-step", "canary", _analysis(step=1, percent=10), PROMOTE, 3,
         "the analysis of r-"),
    Case("analysis-of-another-release", "canary", _analysis(release="r-000000000000"),
         PROMOTE, 3, "the analysis of r-000000000000 at 50% is not of the canary now in prod"),
    Case("analysis-of-another-environment", "canary", _analysis(env="staging"), PROMOTE, 1,
         "is not an analysis of prod"),
    Case("analysis-not-json", "canary", with_input("decision.json", "{pass"), PROMOTE, 1,
         "is unreadable"),
    Case("analysis-file-missing", "canary", nothing, PROMOTE, 1, "/decision.json not found"),
    Case("analysis-from-dev-zero", "canary", nothing,
         ["rollout", "promote", "--env", "prod", "--analysis", "/dev/zero"], 1,
         "analysis record /dev/zero is unreadable: larger than the limit of 1048576 bytes"),
    Case("analysis-duplicate-key", "canary",
         with_input("decision.json", '{"result": "fail", "result": "pass"}'), PROMOTE, 1,
         "is unreadable: duplicate key 'result'"),
    Case("analysis-time-is-text", "canary", _analysis(finished_at="now"), PROMOTE, 1,
         "is malformed: step, percent and finished_at must be numbers"),
    Case("analysis-measurement-not-a-number", "canary",
         _analysis(measurements=[{"metric": "error-rate", "verdict": "pass", "value": "0"}]),
         PROMOTE, 1, "is malformed: measurements must be a list of mappings with numbers"),
    Case("analysis-reasons-not-a-list", "canary", _analysis(reasons="all good"), PROMOTE, 1,
         "is malformed: reasons must be a list of strings"),
    Case("rollout-step-edited-by-hand", "canary", _step_by_hand, PROMOTE, 1,
         "rollout step 'two' of steps [10, 50] is not a canary step mlops wrote"),
    Case("rollout-step-of-100-by-hand", "canary", _step_of_100_by_hand, PROMOTE, 1,
         "rollout step 1 of steps [10, 100] is not a canary step mlops wrote"),
]

FINAL_STEP = [
    Case("final-step-without-approval", "canary", _analysis(), PROMOTE, 4, NEEDS),
    Case("final-step-signed-by-unlisted-key", "canary",
         _then(lambda w: forge(w, w.ids()["prod"], key="mallory"), _analysis()), PROMOTE, 4,
         "No principal matched"),
    Case("final-step-unsigned-approval", "canary",
         _then(lambda w: forge(w, w.ids()["prod"]), _analysis()), PROMOTE, 4, ": no signature"),
    Case("final-step-approval-of-another-release", "canary",
         _then(lambda w: forge(w, "r-000000000000", key="alice"), _analysis()), PROMOTE, 4,
         "none found"),
]

STARTS = [
    Case("start-where-no-canary-is-configured", "staged", nothing,
         ["rollout", "start", "--env", "staging"], 2,
         "environment staging has no canary: in mlops.yaml"),
    Case("start-while-another-canary-runs", "canary", _newer_release_in_staging,
         ["rollout", "start", "--env", "prod"], 1, "is in progress in prod; promote or abort it"),
    Case("start-while-on-hold", "canary", _held,
         ["rollout", "start", "--env", "prod"], 3,
         "environment prod is on hold (errors at 50%); "
         "`mlops rollout start --env prod --clear-hold` lifts it"),
    Case("start-in-raw-deployment-mode", "staged",
         _mode("    serving.kserve.io/deploymentMode: RawDeployment\n"),
         ["rollout", "start", "--env", "prod"], 1,
         "KServe ignores canaryTrafficPercent outside Knative mode (called Serverless "
         "before KServe 0.16)"),
    Case("start-in-standard-mode", "staged",  # KServe 0.16's name for RawDeployment
         _mode("    serving.kserve.io/deploymentMode: Standard\n"),
         ["rollout", "start", "--env", "prod"], 1,
         "InferenceService cancer is annotated serving.kserve.io/deploymentMode: Standard; "
         "KServe ignores canaryTrafficPercent"),
    Case("start-without-a-storage-uri-env", "staged",
         _then(_canary_config, lambda w: w.edit(ISVC, "- name: STORAGE_URI", "- name: MODEL")),
         ["rollout", "start", "--env", "prod"], 1,
         "InferenceService cancer has no predictor container with a STORAGE_URI env var"),
    Case("start-without-a-deployment-mode", "staged", _mode(""),
         ["rollout", "start", "--env", "prod"], 1,
         "has no serving.kserve.io/deploymentMode annotation"),
    Case("abort-with-no-canary", "staged", _canary_config, ["rollout", "abort", "--env", "prod"],
         1, "no canary in progress in prod (no rollout started)"),
    Case("promote-through-plain-promote", "canary", nothing,
         ["promote", "--to", "prod", "--from", "staging"], 2,
         "prod rolls out as a canary: `mlops rollout start --env prod`"),
    Case("analyze-revision-breaks-out-of-matcher", "canary", lambda w: PROM,
         ["rollout", "analyze", "--env", "prod", "--revision", 'c"}} or vector(1) #',
          "--baseline-revision", "cancer-predictor-00001"], 2,
         "argument --revision: 'c\"} or vector(1) #' is not a revision name"),
    Case("analyze-without-prometheus", "canary", nothing,
         ["rollout", "analyze", "--env", "prod", "--revision", "a", "--baseline-revision", "b"],
         1, "no Prometheus to analyse with: set prometheus.url in mlops.yaml"),
    Case("run-with-unreadable-timeout", "canary", nothing,
         ["rollout", "run", "--env", "prod", "--timeout", "forever"], 2,
         "argument --timeout: duration must be a duration like 30s"),
    Case("promote-with-unreadable-max-age", "canary", nothing,
         ["rollout", "promote", "--env", "prod", "--max-age", "-1h"], 2, "argument --max-age"),
]


@params(ANALYSES + FINAL_STEP + STARTS)
def test_rollout_refused(world, case, capsys):
    check(world, case, capsys)
