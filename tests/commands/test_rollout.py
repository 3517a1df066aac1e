"""`mlops rollout start|promote|abort`: canary steps as commits on a real remote.

The analysis itself runs against real Prometheus in test_rollout_analyze.py;
here a decision record file stands in for its output, as `rollout promote
--analysis FILE` takes it from another CI job.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from mlops.adapters import kustomize
from tests.commands.conftest import GOOD, promote, release_of
from tests.conftest import git
from tests.support import crds
from tests.support.promotion import CONFIG, Playground, push_approval, repo_files, ssh_key

pytestmark = pytest.mark.usefixtures("docker_engine")

CANARY = """\
    canary:
      steps: [10, 50]
      analysis:
        metrics:
          - name: error-rate
            query: sum(rate(errors{revision="{{ revision }}"}[{{ interval }}]))
            max: 0.01
"""


def canary_config(registry: str) -> str:
    text = CONFIG.format(registry=registry, soak="0s")
    return text.replace("    approval: true\n", "    approval: true\n" + CANARY)


@pytest.fixture
def fresh(project, built, tmp_path):
    """A repo whose prod rolls out as a canary and runs nothing yet; staging holds v1."""
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "mallory")}
    files = {**repo_files(built[0]), "mlops.yaml": canary_config(built[0]),
             ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n"}
    play = Playground(tmp_path, project(files))
    to_staging(play, built, "pvc://models/cancer-v1")
    return play, keys


@pytest.fixture
def roll(fresh, built):
    """prod runs release v1 (its first release, at 100%); staging holds release v2."""
    play, keys = fresh
    first_release(play, keys)
    to_staging(play, built, "pvc://models/cancer-v2")
    return play, keys


def first_release(play, keys):
    """Approve staging's release for prod and start it: with no baseline, it goes to 100%."""
    approve(play, keys, release=release_of(play, "staging")["id"])
    result = rollout(play, "start", "--json")
    assert result.code == 0 and result.json["status"] == "complete", result.err
    return result


def to_staging(play, built, model_uri):
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--model-uri",
                   model_uri).code == 0
    result = promote(play, "--to", "staging", "--from", "dev",
                     "--metrics", str(play.metrics("m", GOOD)))
    assert result.code == 0, result.err


def push_edit(play, path: str, edit) -> None:
    play.pull()
    file = play.clone / path
    file.write_text(edit(file.read_text()))
    play.proj.commit(f"edit {path}")
    play.proj.git("push", "-q", "origin", "main")


def rollout(play, *args):
    return play.proj.run("rollout", *args, "--env", "prod")


def passing(play, percent_step=(10, 1), result="pass", age=0.0):
    record = release_of(play, "prod")
    decision = {"env": "prod", "release": record["id"], "step": percent_step[1],
                "percent": percent_step[0], "result": result, "reasons": ["error-rate: ok"],
                "finished_at": time.time() - age, "measurements": [
                    {"metric": "error-rate", "index": 1, "verdict": result, "value": 0.0,
                     "query": 'sum(rate(errors{revision="c-2"}[60s]))'}]}
    path = play.base / "decision.json"
    path.write_text(json.dumps(decision))
    return str(path)


def rendered_isvc(play):
    play.pull()
    objects = kustomize.render(play.clone / "environments" / "prod")
    for obj in objects:
        if obj.get("kind") == "InferenceService":
            crds.validate(obj)
    return next(o for o in objects if o["kind"] == "InferenceService")


def last_message(play) -> str:
    return git(play.remote, "log", "-1", "--format=%B", "refs/heads/main")


def approve(play, keys, who="alice", release=None):
    result = play.proj.run("approve", "--env", "prod", "--release",
                           release or release_of(play, "prod")["id"], "--key",
                           str(keys[who][0]), "--principal", "alice@example.com")
    assert result.code == 0, result.err


def test_a_first_release_goes_to_100_percent_gated_and_approved(fresh):
    """KServe splits traffic only once a revision has rolled out (kserve/kserve
    pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go), so a
    first canary would get everything and be compared with nothing."""
    play, keys = fresh
    head = play.remote_head()
    unapproved = rollout(play, "start")
    assert unapproved.code == 4 and unapproved.err.count("\n") == 1, unapproved.err
    assert "prod needs a release manager's signed approval of r-" in unapproved.err
    assert play.remote_head() == head
    approve(play, keys, release=release_of(play, "staging")["id"])
    result = rollout(play, "start")
    assert result.code == 0, result.err
    assert re.match(r"first release r-[0-9a-f]{12} in prod at 100%, approved by "
                    r"alice@example.com \(commit [0-9a-f]{12}\): no stable release runs there",
                    result.out), result.out
    predictor = rendered_isvc(play)["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor
    assert predictor["containers"][0]["env"][0]["value"] == "pvc://models/cancer-v1"
    record = release_of(play, "prod")
    assert record["rollout"]["state"] == "complete" and record["rollout"]["first_release"]
    assert record["approval"]["approver"] == "alice@example.com"
    message = last_message(play)
    assert message.startswith("canary(prod): release r-")
    assert "at 100% (first release: no baseline)" in message.splitlines()[0]
    assert "Mlops-Action: rollout-complete" in message and "Mlops-Canary: 100" in message
    assert "Mlops-Note: first release: no baseline" in message
    history = play.proj.run("history", "--env", "prod", "--json").json["entries"]
    assert history[0]["note"] == "first release: no baseline"
    again = rollout(play, "run", "--json")  # nothing to analyse: run says so and succeeds
    assert again.code == 0 and again.json["state"] == "complete", again.err


def test_a_deleted_record_does_not_make_a_first_release(roll):
    """A push that deletes prod's release.yaml must not let the next release skip its canary."""
    play, _ = roll
    v1 = release_of(play, "prod")["id"]
    play.pull()
    (play.clone / "environments/prod/release.yaml").unlink()
    play.proj.commit("lose prod's record")
    play.proj.git("push", "-q", "origin", "main")
    head = play.remote_head()
    result = rollout(play, "start")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert (f"environment prod has no environments/prod/release.yaml, but release {v1} "
            "entered it (rollout-complete, commit") in result.err
    assert play.remote_head() == head


def test_start_writes_the_first_step_and_the_model(roll):
    play, _ = roll
    stable = release_of(play, "prod")["id"]
    result = rollout(play, "start", "--json")
    assert result.code == 0, result.err
    assert result.json["percent"] == 10 and result.json["baseline"] == stable
    isvc = rendered_isvc(play)
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    env = {e["name"]: e["value"] for e in predictor["containers"][0]["env"]}
    assert env["STORAGE_URI"] == "pvc://models/cancer-v2"
    assert predictor["containers"][0]["args"][0] == "--model_name=cancer"  # base survives
    record = release_of(play, "prod")
    assert record["id"] == release_of(play, "staging")["id"]
    assert record["rollout"]["state"] == "canary" and record["rollout"]["steps"] == [10, 50]
    message = last_message(play)
    assert "Mlops-Action: rollout-start" in message and "Mlops-Canary: 10" in message


def test_start_twice_changes_nothing(roll):
    play, _ = roll
    assert rollout(play, "start").code == 0
    head = play.remote_head()
    again = rollout(play, "start", "--json")
    assert again.code == 0 and again.json["status"] == "unchanged"
    assert play.remote_head() == head


def test_steps_then_final_promote_needs_a_real_approval(roll):
    play, keys = roll
    assert rollout(play, "start").code == 0
    result = rollout(play, "promote", "--analysis", passing(play), "--json")
    assert result.code == 0, result.err
    assert result.json["percent"] == 50
    assert rendered_isvc(play)["spec"]["predictor"]["canaryTrafficPercent"] == 50
    assert "Mlops-Check: error-rate #1 pass value=0" in last_message(play)

    head = play.remote_head()
    no_approval = rollout(play, "promote", "--analysis", passing(play, (50, 2)))
    assert no_approval.code == 4 and "signed approval" in no_approval.err
    push_approval(play, "prod", "prod", "alice@example.com", keys["mallory"][0])  # unlisted key
    forged = rollout(play, "promote", "--analysis", passing(play, (50, 2)))
    assert forged.code == 4 and "No principal matched" in forged.err, forged.err
    assert release_of(play, "prod")["rollout"]["percent"] == 50
    assert play.remote_log("%s")[0].startswith("approve(prod)") and head != play.remote_head()

    approve(play, keys)
    final = rollout(play, "promote", "--analysis", passing(play, (50, 2)), "--json")
    assert final.code == 0, final.err
    assert final.json["state"] == "complete" and final.json["approver"] == "alice@example.com"
    assert "canaryTrafficPercent" not in rendered_isvc(play)["spec"]["predictor"]
    assert release_of(play, "prod")["approval"]["approver"] == "alice@example.com"


@pytest.mark.parametrize("decision, expect", [
    (None, "no analysis of the canary in prod yet"),
    (("fail", 0.0, (10, 1)), "did not pass (fail)"),
    (("pass", 7200.0, (10, 1)), "older than 60 minutes"),
    (("pass", 0.0, (50, 2)), "is not of the canary now in prod"),
])
def test_promote_without_a_fresh_passing_analysis_is_refused(roll, decision, expect):
    play, _ = roll
    assert rollout(play, "start").code == 0
    head = play.remote_head()
    extra = []
    if decision is not None:
        result, age, step = decision
        extra = ["--analysis", passing(play, step, result, age)]
    result = rollout(play, "promote", *extra)
    assert result.code == 3, result.err
    assert expect in result.err and result.err.count("\n") == 1, result.err
    assert play.remote_head() == head


def test_abort_restores_the_previous_release_with_the_hold(roll):
    play, _ = roll
    v1 = release_of(play, "prod")["id"]
    started = rollout(play, "start", "--json")
    assert started.code == 0 and started.json["baseline"] == v1
    head = play.remote_head()
    stale = rollout(play, "abort", "--expect", v1)  # the operator thinks v1 is the canary
    assert stale.code == 1 and stale.err.count("\n") == 1, stale.err
    assert f"runs release {started.json['release']}" in stale.err
    assert f"not {v1} as expected; nothing aborted" in stale.err
    assert play.remote_head() == head

    result = rollout(play, "abort", "--reason", "errors at 10%", "--expect",
                     started.json["release"], "--json")
    assert result.code == 0, result.err
    record = release_of(play, "prod")
    assert record["id"] == v1 and record["hold"]["reason"] == "errors at 10%"
    assert record["rollout"]["state"] == "aborted" and record["rollout"]["percent"] == 0
    predictor = rendered_isvc(play)["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 0
    assert predictor["containers"][0]["env"][0]["value"] == "pvc://models/cancer-v1"
    history = play.proj.run("history", "--env", "prod", "--json").json["entries"]
    assert history[0]["action"] == "rollout-abort" and history[0]["release"] == v1
    assert history[0]["hold"] == "set"
    held = rollout(play, "start")
    assert held.code == 3 and "on hold" in held.err


@pytest.mark.parametrize("world", ["fresh", "roll"])  # a first release, and a canary
def test_raw_deployment_is_refused_and_nothing_is_committed(world, request):
    play, keys = request.getfixturevalue(world)
    approve(play, keys, release=release_of(play, "staging")["id"])
    push_edit(play, "environments/base/inferenceservice.yaml", lambda t: t.replace(
        "deploymentMode: Knative", "deploymentMode: RawDeployment"))
    head = play.remote_head()
    result = rollout(play, "start")
    assert result.code == 1 and "RawDeployment" in result.err, result.err
    assert result.err.count("\n") == 1 and play.remote_head() == head


@pytest.mark.parametrize("edit, expect, code", [
    (lambda t: t.replace(CANARY, ""), "has no canary: in mlops.yaml", 2),
    (lambda t: t.replace("steps: [10, 50]", "steps: [50, 10]"), "strictly increasing", 1),
    (lambda t: t.replace("steps: [10, 50]", "steps: [10, 100]"), "within 1-99", 1),
    (lambda t: t.replace("max: 0.01", "max: 0.01\n            min: 0.5"), "min 0.5 > max", 1),
    (lambda t: t.replace("{{ revision }}", "{{ revison }}"), "unknown template variable", 1),
    (lambda t: t.replace("{{ interval }}]", "{{ interval ]"), "unbalanced", 1),
    (lambda t: t.replace("  - name: prod\n", "  - name: prod\n    service: nope\n"),
     "renders no InferenceService 'nope'", 1),
])
def test_bad_canary_config_is_one_line_and_commits_nothing(roll, edit, expect, code):
    play, _ = roll
    push_edit(play, "mlops.yaml", edit)
    head = play.remote_head()
    result = rollout(play, "start")
    assert result.code == code, result.err
    assert expect in result.err and result.err.count("\n") == 1, result.err
    assert play.remote_head() == head
    assert yaml.safe_load(play.remote_show("environments/prod/kustomization.yaml"))


def test_plain_promote_into_a_canary_environment_points_to_rollout(roll):
    play, _ = roll
    result = promote(play, "--to", "prod", "--from", "staging")
    assert result.code == 2 and "mlops rollout start --env prod" in result.err


# -- the hold an abort sets, and what lifts it ---------------------------------------------

def test_start_with_clear_hold_lifts_the_hold_an_abort_set(roll):
    """README: abort sets the hold "so nothing rolls forward until `rollout start
    --clear-hold`". The held start names that command; the one with --clear-hold starts
    the canary again and the record is no longer held, so the canary can move on."""
    play, _ = roll
    v1 = release_of(play, "prod")["id"]
    v2 = rollout(play, "start", "--json").json["release"]
    assert rollout(play, "abort", "--reason", "errors at 10%").code == 0
    assert release_of(play, "prod")["hold"]["reason"] == "errors at 10%"
    head = play.remote_head()
    held = rollout(play, "start")
    assert held.code == 3 and held.err.count("\n") == 1, held.err
    assert "environment prod is on hold (errors at 10%)" in held.err
    # the way out it names must be one that works in a canary environment
    assert "`mlops rollout start --env prod --clear-hold`" in held.err, held.err
    assert play.remote_head() == head

    result = rollout(play, "start", "--clear-hold", "--json")
    assert result.code == 0, result.err
    assert (result.json["status"], result.json["release"], result.json["baseline"],
            result.json["percent"]) == ("started", v2, v1, 10)
    record = release_of(play, "prod")
    assert record["hold"] is None, record["hold"]
    assert record["id"] == v2 and record["rollout"]["state"] == "canary"
    assert "Mlops-Hold: cleared" in last_message(play)
    history = play.proj.run("history", "--env", "prod", "--json").json["entries"]
    assert history[0]["action"] == "rollout-start" and history[0]["hold"] == "cleared"
    # lifted for good: the next step needs no --clear-hold
    step = rollout(play, "promote", "--analysis", passing(play), "--json")
    assert step.code == 0 and step.json["percent"] == 50, step.err


# -- deployment modes ----------------------------------------------------------------------

@pytest.mark.parametrize("world", ["fresh", "roll"])  # a first release, and a canary
def test_serverless_the_old_name_of_knative_is_accepted_with_a_note(world, request):
    """KServe <= 0.15 knows only `Serverless`: rollout takes it as Knative (and leaves the
    annotation as written); `mlops validate` notes that KServe >= 0.16 wants `Knative`."""
    play, keys = request.getfixturevalue(world)
    approve(play, keys, release=release_of(play, "staging")["id"])
    push_edit(play, "environments/base/inferenceservice.yaml", lambda t: t.replace(
        "deploymentMode: Knative", "deploymentMode: Serverless"))
    result = rollout(play, "start", "--json")
    assert result.code == 0, result.err
    assert result.json["status"] == ("complete" if world == "fresh" else "started")
    isvc = rendered_isvc(play)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert isvc["spec"]["predictor"].get("canaryTrafficPercent") == (
        None if world == "fresh" else 10)
    report = validate_prod(play)
    assert [n for n in report["notes"] if "deploymentMode" in n] == [
        "environments/prod: InferenceService cancer is annotated serving.kserve.io/"
        "deploymentMode: Serverless, the pre-0.16 name of Knative; KServe 0.16 records Knative "
        "and may refuse later updates, and 0.17+ rewrites it (Argo CD then sees a difference), "
        "so write Knative unless the cluster runs KServe <= 0.15"]
    assert not [p for p in report["problems"] if "deploymentMode" in p["message"]]


def validate_prod(play) -> dict:
    """`mlops validate --env prod --json` on the pulled clone. (Its image and pipeline
    checks always have problems in this playground, whose `serve` image is never built.)"""
    play.pull()
    return play.proj.run("validate", "--env", "prod", "--json").json


def test_standard_mode_is_refused_and_nothing_is_committed(roll):
    """`Standard` is KServe 0.16's name for RawDeployment: no Knative, no traffic split."""
    play, _ = roll
    push_edit(play, "environments/base/inferenceservice.yaml", lambda t: t.replace(
        "deploymentMode: Knative", "deploymentMode: Standard"))
    head = play.remote_head()
    result = rollout(play, "start")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert ("InferenceService cancer is annotated serving.kserve.io/deploymentMode: Standard; "
            "KServe ignores canaryTrafficPercent") in result.err
    assert play.remote_head() == head and release_of(play, "prod")["rollout"]["state"] == \
        "complete"


# -- the `test` op guarding each JSON-patch value ------------------------------------------

STORAGE_ENTRY = "          - name: STORAGE_URI\n            value: pvc://models/cancer\n"
LOG_LEVEL = "          - name: LOG_LEVEL\n            value: info\n"
# A patch of the team's own, listed after mlops's: it puts an env var in front of the
# predictor's, so the list mlops's patch sees is not the one the full render shows.
LATER_PATCH = """\
  - target:
      kind: InferenceService
      name: cancer
    patch: |-
      - op: add
        path: /spec/predictor/containers/0/env/0
        value: {name: EXTRA, value: "1"}
"""


def replacing(old: str, new: str):
    """An edit for push_edit that fails the test if `old` is not there to replace."""
    def edit(text: str) -> str:
        assert old in text, f"{old!r} not in {text!r}"
        return text.replace(old, new)
    return edit


def patch_ops(play) -> list[dict]:
    return yaml.safe_load(play.remote_show("environments/prod/inferenceservice-patch.yaml"))


def test_a_json_patch_whose_guard_no_longer_matches_fails_the_render(roll):
    """Each replaced value is guarded by a `test` op on the name it expects. When the list
    it indexes is not the one it was computed from, the render fails (one line, nothing
    committed) instead of writing the model URI into another variable."""
    play, _ = roll
    push_edit(play, "environments/base/inferenceservice.yaml",
              replacing(STORAGE_ENTRY, STORAGE_ENTRY + LOG_LEVEL))
    assert rollout(play, "start").code == 0
    ops = patch_ops(play)
    assert {"op": "test", "path": "/spec/predictor/containers/0/env/0/name",
            "value": "STORAGE_URI"} in ops
    # mlops's own patches: entry ends the file; the team's goes after it
    push_edit(play, "environments/prod/kustomization.yaml",
              replacing("      name: cancer\n", "      name: cancer\n" + LATER_PATCH))
    head, record = play.remote_head(), release_of(play, "prod")
    # the full render shows STORAGE_URI at env/1, where mlops's patch finds LOG_LEVEL
    result = rollout(play, "promote", "--analysis", passing(play))
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert result.err == ("mlops: error: kubectl kustomize environments/prod failed: testing "
                          "value /spec/predictor/containers/0/env/1/name failed: test failed\n")
    assert play.remote_head() == head and release_of(play, "prod") == record
    assert play.proj.status() == ""


def render_problems(report: dict) -> list[str]:
    return [p["message"] for p in report["problems"] if "kustomize" in p["message"]]


def test_a_reordered_base_breaks_the_committed_render_until_the_next_step(roll):
    """After a commit, a base edit that moves STORAGE_URI makes the committed overlay fail
    to render (Argo CD and `mlops validate` see it) rather than patch the wrong variable;
    the next rollout step computes the patch against the new base."""
    play, _ = roll
    assert rollout(play, "start").code == 0
    assert not render_problems(validate_prod(play))
    push_edit(play, "environments/base/inferenceservice.yaml",
              replacing(STORAGE_ENTRY, LOG_LEVEL + STORAGE_ENTRY))
    assert render_problems(validate_prod(play)) == [
        "environments/prod: kubectl kustomize environments/prod failed: testing value "
        "/spec/predictor/containers/0/env/0/name failed: test failed"]
    step = rollout(play, "promote", "--analysis", passing(play), "--json")
    assert step.code == 0 and step.json["percent"] == 50, step.err
    assert {"op": "test", "path": "/spec/predictor/containers/0/env/1/name",
            "value": "STORAGE_URI"} in patch_ops(play)
    env = rendered_isvc(play)["spec"]["predictor"]["containers"][0]["env"]
    assert env == [{"name": "LOG_LEVEL", "value": "info"},
                   {"name": "STORAGE_URI", "value": "pvc://models/cancer-v2"},
                   {"name": "MLOPS_RELEASE", "value": release_of(play, "prod")["id"]}]


# -- a trust root pinned outside the branch, on `rollout` ----------------------------------

def test_rollout_approvals_are_judged_by_a_pinned_trust_root(fresh, built, tmp_path,
                                                             monkeypatch):
    """README: `$MLOPS_TRUST_ROOT` or `--trust-root FILE` on `promote` and `rollout`. carol
    is a release manager only in the pinned root; the branch lists alice alone."""
    play, keys = fresh
    carol = ssh_key(tmp_path, "carol")
    root = tmp_path / "trust-root.yaml"
    root.write_text("allowed_signers: |\n"
                    f"  carol@example.com {carol[1]}\n"
                    "release_managers: [carol@example.com]\n")

    def approve_as_carol(release):
        result = play.proj.run("approve", "--env", "prod", "--release", release,
                               "--key", str(carol[0]), "--principal", "carol@example.com",
                               "--trust-root", str(root))  # checked as promotions will
        assert result.code == 0, result.err

    approve_as_carol(release_of(play, "staging")["id"])
    head = play.remote_head()
    branch = rollout(play, "start")  # the branch's root: carol's key is not in it
    assert branch.code == 4 and "No principal matched" in branch.err, branch.err
    assert play.remote_head() == head
    first = rollout(play, "start", "--trust-root", str(root), "--json")
    assert first.code == 0 and first.json["approver"] == "carol@example.com", first.err

    to_staging(play, built, "pvc://models/cancer-v2")
    monkeypatch.setenv("MLOPS_TRUST_ROOT", str(root))
    assert rollout(play, "start").code == 0
    assert rollout(play, "promote", "--analysis", passing(play)).code == 0
    head = play.remote_head()
    refused = play.proj.run("approve", "--env", "prod", "--release",
                            release_of(play, "prod")["id"], "--key", str(keys["alice"][0]),
                            "--principal", "alice@example.com")  # $MLOPS_TRUST_ROOT is set
    assert refused.code == 4 and "No principal matched" in refused.err, refused.err
    assert play.remote_head() == head
    # alice, trusted by the branch but not by the pinned root, approves with plain git
    push_approval(play, "prod", "prod", "alice@example.com", keys["alice"][0])
    head = play.remote_head()
    pinned = rollout(play, "promote", "--analysis", passing(play, (50, 2)))
    assert pinned.code == 4 and "No principal matched" in pinned.err, pinned.err
    assert play.remote_head() == head
    approve_as_carol(release_of(play, "prod")["id"])
    final = rollout(play, "promote", "--analysis", passing(play, (50, 2)), "--json")
    assert final.code == 0, final.err
    assert final.json["state"] == "complete" and final.json["approver"] == "carol@example.com"
    assert release_of(play, "prod")["approval"]["approver"] == "carol@example.com"
