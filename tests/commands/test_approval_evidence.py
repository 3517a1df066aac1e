"""An approval binds to the release that enters the environment, evidence included.

Before, an approval-gated environment whose promotion attaches `--metrics`
deadlocked: promote wanted an approval of the new id (the source's release
plus the metrics), and `mlops approve` accepted only the source's id. Now
`promote --plan --json` names the id, `approve` takes the same evidence and
recomputes it, and promote accepts exactly that. (The canary path, where the
id is the one `rollout start` wrote, is tests/commands/test_rollout.py.)
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
    assert f"--release {wanted} --metrics {metrics}" in plan.json["approval"]["missing"]
    assert play.remote_head() == head  # a plan pushes nothing

    approval = approve(play, keys, wanted, "--metrics", str(metrics))
    assert approval.code == 0, approval.err
    assert approval.json["metrics"] == GOOD  # what was consented to, spelled out

    result = promote(play, "--to", "staging", "--from", "dev", "--metrics", str(metrics),
                     "--json")
    assert result.code == 0, result.err
    assert result.json["release"] == wanted and result.json["approver"] == "alice@example.com"
    assert release_of(play, "staging")["metrics"] == GOOD


def test_approve_without_the_evidence_names_both_ids(gated):
    play, keys, metrics = gated
    dev = release_of(play, "dev")["id"]
    plan = promote(play, "--to", "staging", "--from", "dev", "--metrics", str(metrics),
                   "--plan", "--json")
    wanted = plan.json["approval"]["release"]
    head = play.remote_head()
    refused = approve(play, keys, wanted)
    assert refused.code == 1 and f"dev has {dev}" in refused.err, refused.err
    other = play.metrics("other", {**GOOD, "accuracy": 0.5})
    refused = approve(play, keys, wanted, "--metrics", str(other))
    assert refused.code == 1 and "which with these --metrics is r-" in refused.err
    assert play.remote_head() == head


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
    assert f"--release {wanted} --metrics {run.id}" in plan.json["approval"]["missing"]
    approval = approve(play, keys, wanted, "--metrics", run.id)
    assert approval.code == 0, approval.err
    assert approval.json["metrics"] == GOOD
    result = promote(play, "--to", "staging", "--from", "dev", "--metrics", run.id, "--json")
    assert result.code == 0, result.err
    assert result.json["release"] == wanted
