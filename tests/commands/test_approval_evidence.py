"""An approval binds to the release that enters the environment, evidence included.

Before, an approval-gated environment whose promotion attaches `--metrics`
deadlocked: promote wanted an approval of the new id (the source's release
plus the metrics), and `mlops approve` accepted only the source's id. Now
`promote --plan --json` names the id, `approve` takes the same evidence and
recomputes it (with `--metrics`, `--model-uri` or both), refuses any other id in
one line naming the id given, the source's id and the id this evidence gives, and
prints the digests, model and metrics it approves; promote accepts exactly that id.
(The canary path, where the id is the one `rollout start` wrote, is
tests/commands/test_rollout.py.)
"""

from __future__ import annotations

import pytest

from tests.commands.conftest import GOOD, promote, release_of
from tests.support.promotion import CONFIG, Playground, repo_files, ssh_key

pytestmark = pytest.mark.usefixtures("docker_engine")

# staging, right after dev, is approval-gated: `mlops run` in dev, then its metrics go in.
STAGING_GATED = "  - name: staging\n    approval: true\n"


@pytest.fixture
def gated(project, built, tmp_path):
    keys = {"alice": ssh_key(tmp_path, "alice")}
    config = CONFIG.format(registry=built[0], soak="0s").replace(
        "  - name: staging\n", STAGING_GATED, 1)
    files = {**repo_files(built[0]), "mlops.yaml": config,
             ".mlops/allowed_signers": f"alice@example.com {keys['alice'][1]}\n"}
    play = Playground(tmp_path, project(files))
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    return play, keys, play.metrics("m", GOOD)


def approve(play, keys, release, *evidence):
    return play.proj.run("approve", "--env", "staging", "--release", release, "--key",
                         str(keys["alice"][0]), "--principal", "alice@example.com",
                         *evidence, "--json")


def test_plan_names_the_id_to_approve_and_approve_recomputes_it(gated):
    play, keys, metrics = gated
    head = play.remote_head()
    plan = promote(play, "--to", "staging", "--from", "dev", "--metrics", str(metrics),
                   "--plan", "--json")
    assert plan.code == 4, plan.err
    wanted = plan.json["approval"]["release"]
    assert wanted == plan.json["release"] != release_of(play, "dev")["id"]
    digest = plan.json["approval"]["digest"]
    assert (f"--release {wanted} --digest {digest} --metrics {metrics}"
            in plan.json["approval"]["missing"])
    assert play.remote_head() == head  # a plan pushes nothing

    approval = approve(play, keys, wanted, "--metrics", str(metrics))
    assert approval.code == 0, approval.err
    assert approval.json["metrics"] == GOOD  # what was consented to, spelled out
    assert approval.json["images"] == dev_images(play) and approval.json["model_uri"] is None

    result = promote(play, "--to", "staging", "--from", "dev", "--metrics", str(metrics),
                     "--json")
    assert result.code == 0, result.err
    assert result.json["release"] == wanted and result.json["approver"] == "alice@example.com"
    assert release_of(play, "staging")["metrics"] == GOOD


def dev_images(play) -> dict[str, str]:
    """dev's digests as `image@sha256:...`, read from its release record on the remote."""
    images = release_of(play, "dev")["images"]
    assert images and all(i["digest"].startswith("sha256:") for i in images.values())
    return {name: f"{i['image']}@{i['digest']}" for name, i in images.items()}


def plan_id(play, *evidence: str) -> str:
    """The id `promote --plan --json` names for approval with this evidence."""
    plan = promote(play, "--to", "staging", "--from", "dev", *evidence, "--plan", "--json")
    assert plan.code == 4, plan.err
    return plan.json["approval"]["release"]


def refusal(wanted: str, dev: str, evidence: str = "") -> str:
    return (f"mlops: error: release {wanted} is not the one waiting in dev (dev has {dev}"
            f"{evidence}); approve the release about to enter staging "
            "(`mlops promote --plan --json` names it)\n")


def test_approve_without_the_evidence_names_both_ids(gated):
    play, keys, metrics = gated
    dev = release_of(play, "dev")["id"]
    wanted = plan_id(play, "--metrics", str(metrics))
    head = play.remote_head()
    refused = approve(play, keys, wanted)
    assert refused.code == 1 and refused.err == refusal(wanted, dev), refused.err
    other = play.metrics("other", {**GOOD, "accuracy": 0.5})
    recomputed = plan_id(play, "--metrics", str(other))
    assert len({wanted, dev, recomputed}) == 3
    refused = approve(play, keys, wanted, "--metrics", str(other))
    assert refused.code == 1, refused.err
    assert refused.err == refusal(wanted, dev, f", which with these --metrics is {recomputed}")
    assert play.remote_head() == head


MODEL = "pvc://models/cancer-v2"


def test_approve_takes_the_model_uri_as_promote_does_and_prints_what_it_approves(gated):
    play, keys, metrics = gated
    evidence = ("--metrics", str(metrics), "--model-uri", MODEL)
    wanted = plan_id(play, *evidence)
    dev = release_of(play, "dev")["id"]
    assert wanted not in {dev, plan_id(play, "--metrics", str(metrics))}
    approval = play.proj.run("approve", "--env", "staging", "--release", wanted, "--key",
                             str(keys["alice"][0]), "--principal", "alice@example.com",
                             *evidence)
    assert approval.code == 0, approval.err
    first, *rest = approval.out.splitlines()
    assert first.startswith(f"alice@example.com approved release {wanted} for staging (commit ")
    assert rest == [*(f"  {name}: {ref}" for name, ref in sorted(dev_images(play).items())),
                    f"  model: {MODEL}", "  metrics: accuracy 0.95, f1 0.94, roc_auc 0.97"]
    result = promote(play, "--to", "staging", "--from", "dev", *evidence, "--json")
    assert result.code == 0, result.err
    assert result.json["release"] == wanted and result.json["approver"] == "alice@example.com"
    staging = release_of(play, "staging")
    assert (staging["id"], staging["model_uri"], staging["metrics"]) == (wanted, MODEL, GOOD)


def test_approve_with_another_model_uri_or_without_it_names_both_ids(gated):
    play, keys, metrics = gated
    dev = release_of(play, "dev")["id"]
    wanted = plan_id(play, "--model-uri", MODEL)
    head = play.remote_head()
    refused = approve(play, keys, wanted)
    assert refused.code == 1 and refused.err == refusal(wanted, dev), refused.err
    other = "pvc://models/cancer-v3"
    recomputed = plan_id(play, "--model-uri", other)
    assert len({wanted, dev, recomputed}) == 3
    refused = approve(play, keys, wanted, "--model-uri", other)
    assert refused.code == 1, refused.err
    assert refused.err == refusal(wanted, dev, f", which with these --model-uri is {recomputed}")
    both = plan_id(play, "--metrics", str(metrics), "--model-uri", MODEL)
    refused = approve(play, keys, wanted, "--metrics", str(metrics), "--model-uri", MODEL)
    assert refused.code == 1, refused.err
    assert refused.err == refusal(
        wanted, dev, f", which with these --metrics and --model-uri is {both}")
    assert play.remote_head() == head
    approval = approve(play, keys, wanted, "--model-uri", MODEL)
    assert approval.code == 0, approval.err
    assert (approval.json["approved"], approval.json["model_uri"], approval.json["metrics"],
            approval.json["images"]) == (wanted, MODEL, {}, dev_images(play))


def test_an_approval_of_the_evidence_less_id_does_not_count(gated):
    play, keys, metrics = gated
    dev = release_of(play, "dev")["id"]
    assert approve(play, keys, dev).code == 0  # consent to the release without the metrics
    head = play.remote_head()
    result = promote(play, "--to", "staging", "--from", "dev", "--metrics", str(metrics))
    assert result.code == 4 and "none found" in result.err, result.err
    assert play.remote_head() == head


def test_a_run_id_as_evidence_names_the_same_release_in_approve_and_promote(gated):
    from mlops.services import runstore

    play, keys, _ = gated
    run = runstore.record(play.clone, runstore.start(), pipeline="training", env="dev",
                          version="training-0123456789", images={}, parameters={},
                          metrics=GOOD, model_uri=None)
    plan = promote(play, "--to", "staging", "--from", "dev", "--metrics", run.id,
                   "--plan", "--json")
    wanted = plan.json["approval"]["release"]
    digest = plan.json["approval"]["digest"]
    assert (f"--release {wanted} --digest {digest} --metrics {run.id}"
            in plan.json["approval"]["missing"])
    approval = approve(play, keys, wanted, "--metrics", run.id)
    assert approval.code == 0, approval.err
    assert approval.json["metrics"] == GOOD
    result = promote(play, "--to", "staging", "--from", "dev", "--metrics", run.id, "--json")
    assert result.code == 0, result.err
    assert result.json["release"] == wanted
