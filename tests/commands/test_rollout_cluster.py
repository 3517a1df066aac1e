"""What KServe does with what a canary environment commits, read from its controller.

`pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go`
(KServe v0.15-v0.20): without `canaryTrafficPercent` the latest revision takes
100% (`LatestRevision: true`), which Knative serves from the latest *ready*
revision; with it, the rest stays on the last rolled-out revision (`prev`).
"""

from __future__ import annotations

import pytest

from tests.commands.conftest import GOOD, built, promote, release_of  # noqa: F401
from tests.commands.test_rollout import (  # noqa: F401
    first_release,
    fresh,
    push_edit,
    rendered_isvc,
    replacing,
    roll,
    rollout,
    validate_prod,
)

pytestmark = pytest.mark.usefixtures("docker_engine")


def test_a_rollback_during_a_canary_is_refused_for_abort(roll):  # noqa: F811
    """A rollback writes no canaryTrafficPercent: the canary being rolled back would take
    all traffic until the earlier release's new revision is ready."""
    play, _ = roll
    v1 = release_of(play, "prod")["id"]
    assert rollout(play, "start").code == 0
    head = play.remote_head()
    result = play.proj.run("rollback", "--env", "prod")
    assert result.code == 1, result.err
    assert "`mlops rollout abort --env prod` returns it to its baseline" in result.err
    assert play.remote_head() == head
    assert rollout(play, "abort", "--reason", "bad canary").code == 0
    assert rendered_isvc(play)["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert release_of(play, "prod")["id"] == v1


def _release_env(isvc: dict) -> list[str]:
    return [v["value"] for v in isvc["spec"]["predictor"]["containers"][0]["env"]
            if v["name"] == "MLOPS_RELEASE"]


def test_a_release_with_the_stable_pod_template_still_makes_a_new_revision(fresh, built):  # noqa: F811
    """Same build, same model URI, other metrics: a new release whose predictor would render
    as the stable one's. Without a new revision KServe would split traffic over one
    revision, read it as a rollback and serve the revision before the stable one
    (inference_service_status.go PropagateStatus): the release id in the template
    (MLOPS_RELEASE) makes every release a revision of its own."""
    play, keys = fresh
    first_release(play, keys)
    v1 = release_of(play, "prod")["id"]
    stable = rendered_isvc(play)
    assert _release_env(stable) == [v1]
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--model-uri",
                   "pvc://models/cancer-v1").code == 0
    again = promote(play, "--to", "staging", "--from", "dev",
                    "--metrics", str(play.metrics("m2", {**GOOD, "accuracy": 0.96})))
    assert again.code == 0, again.err
    started = rollout(play, "start", "--json")
    assert started.code == 0 and started.json["baseline"] == v1, started.err
    canary = rendered_isvc(play)
    assert _release_env(canary) == [started.json["release"]] != [v1]
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 10
    aborted = rollout(play, "abort", "--reason", "same model, other metrics")
    assert aborted.code == 0, aborted.err
    assert _release_env(rendered_isvc(play)) == [v1]


HAND_MADE = """\
  - target:
      kind: InferenceService
      name: cancer
    patch: |-
      - op: replace
        path: /spec/predictor/containers/0/env/0/value
        value: s3://attacker/other-model
"""


def test_validate_flags_a_hand_made_patch_that_serves_another_model(roll):  # noqa: F811
    """No gate or approval sees a commit that edits environments/prod by hand: validate
    compares what the overlay renders with what release.yaml says."""
    play, _ = roll
    before = validate_prod(play)
    assert not [p for p in before["problems"] if "renders with" in p["message"]]
    push_edit(play, "environments/prod/kustomization.yaml",
              replacing("      name: cancer\n", "      name: cancer\n" + HAND_MADE))
    after = [p["message"] for p in validate_prod(play)["problems"]]
    release = release_of(play, "prod")["id"]
    said = (f"environments/prod/release.yaml: release {release} serves model "
            "pvc://models/cancer-v1, but InferenceService cancer renders with "
            "s3://attacker/other-model")
    assert said in after, after
