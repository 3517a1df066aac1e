"""A release rolled back (or whose canary was aborted) comes back to an environment only on
an approval given after that, by every path: `promote --clear-hold`, a hold deleted by
hand, the same content fed again through dev and staging, a second `rollback`, and a
canary restarted with `rollout start --clear-hold`. Found by a security review: each
path used the approval given before the rollback (mlops.core.revocations).

Real registry, git remotes and ssh-keygen keys, as the other approval tests.
"""

from __future__ import annotations

import time

import pytest
import yaml

from mlops import config as cfg
from mlops.analysis_run import render_queries
from mlops.services.decisions import save_decision
from tests.commands import test_rollout as tr
from tests.commands.conftest import GOOD, promote, release_of
from tests.commands.test_approval_shape import TO_PROD, approve, waiting
from tests.commands.test_approvals import signed  # noqa: F401  (a fixture)
from tests.commands.test_rollout import fresh, roll  # noqa: F401  (fixtures)
from tests.conftest import git

pytestmark = pytest.mark.usefixtures("docker_engine")


def into_staging(play, built, accuracy: float) -> str:
    """The second build's release through dev and staging; its id."""
    metrics = play.metrics(f"m{accuracy}", {**GOOD, "accuracy": accuracy})
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(metrics)).code == 0
    assert promote(play, "--to", "staging", "--from", "dev").code == 0
    return waiting(play).id


@pytest.fixture
def two_in_prod(signed, built):  # noqa: F811
    """prod ran r1, then r2, both approved: (play, keys, r1, r2)."""
    play, keys = signed
    r1 = waiting(play).id
    approve(play, keys, r1)
    assert promote(play, *TO_PROD).code == 0
    r2 = into_staging(play, built, 0.96)
    approve(play, keys, r2)
    assert promote(play, *TO_PROD).code == 0
    return play, keys, r1, r2


@pytest.fixture
def rolled_back(two_in_prod):
    """r2 was rolled back: r1 runs, on hold."""
    play, keys, r1, r2 = two_in_prod
    result = play.proj.run("rollback", "--env", "prod", "--reason", "r2 leaks PII")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["id"] == r1
    return play, keys, r1, r2


def lapsed(result, release_id: str) -> bool:
    return (result.code == 4 and f"given before release {release_id} was rolled back in prod"
            in result.err and result.err.count("\n") == 1)


def test_the_rollback_commit_names_the_release_it_revokes(rolled_back):
    play, _, r1, r2 = rolled_back
    message = git(play.remote, "log", "-1", "--format=%B", "main")
    lines = message.splitlines()
    assert f"Mlops-Revokes: {r2}" in lines and f"Mlops-Release: {r1}" in lines, message


def test_clearing_the_hold_does_not_bring_back_the_release_on_its_old_approval(rolled_back):
    play, keys, _, r2 = rolled_back
    head = play.remote_head()
    refused = promote(play, *TO_PROD, "--clear-hold")  # the hold's own rule says no first
    assert refused.code == 4 and "given before prod was put on hold" in refused.err
    assert play.remote_head() == head
    approve(play, keys, r2)  # a release manager looked again and approves anew
    result = promote(play, *TO_PROD, "--clear-hold")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["id"] == r2


def test_a_hold_deleted_by_hand_does_not_bring_back_the_release(rolled_back):
    play, _, _, r2 = rolled_back

    def drop_hold(text: str) -> str:
        doc = yaml.safe_load(text)
        doc["hold"] = None
        return text.split("\n", 1)[0] + "\n" + yaml.safe_dump(doc, sort_keys=False)

    tr.push_edit(play, "environments/prod/release.yaml", drop_hold)
    head = play.remote_head()
    assert lapsed(promote(play, *TO_PROD), r2)  # what a CI job would run next
    assert play.remote_head() == head


def test_the_same_content_fed_again_needs_a_new_approval(rolled_back, built):
    play, keys, _, r2 = rolled_back
    r3 = into_staging(play, built, 0.97)
    approve(play, keys, r3)
    assert promote(play, *TO_PROD, "--clear-hold").code == 0
    assert into_staging(play, built, 0.96) == r2  # the same id, through dev and staging
    head = play.remote_head()
    assert lapsed(promote(play, *TO_PROD), r2)
    assert play.remote_head() == head


def test_a_second_rollback_goes_further_back_not_to_the_release_rolled_back(rolled_back):
    play, _, r1, r2 = rolled_back
    head = play.remote_head()
    again = play.proj.run("rollback", "--env", "prod")
    # r2 was rolled back and r1 runs: nothing earlier is left to go back to.
    assert again.code == 1 and "no earlier release to roll back to" in again.err, again.err
    assert lapsed(play.proj.run("rollback", "--env", "prod", "--to", r2), r2)
    assert play.remote_head() == head and release_of(play, "prod")["id"] == r1


def test_an_aborted_canary_restarted_past_its_hold_needs_a_new_approval(roll):  # noqa: F811
    play, keys = roll
    v1, v2 = release_of(play, "prod")["id"], release_of(play, "staging")["id"]
    tr.approve(play, keys, release=v2)  # approved before its canary
    assert tr.rollout(play, "start").code == 0
    assert tr.rollout(play, "abort", "--reason", "errors at 10%").code == 0
    assert release_of(play, "prod")["id"] == v1
    assert tr.rollout(play, "start", "--clear-hold").code == 0  # no approval asked here
    assert tr.rollout(play, "promote", "--analysis", tr.passing(play)).code == 0
    head = play.remote_head()
    final = tr.rollout(play, "promote", "--analysis", tr.passing(play, (50, 2)))
    assert final.code == 4 and f"given before release {v2} was rolled back in prod" in \
        final.err, final.err
    assert play.remote_head() == head
    tr.approve(play, keys, release=v2)
    final = tr.rollout(play, "promote", "--analysis", tr.passing(play, (50, 2)), "--json")
    assert final.code == 0 and final.json["state"] == "complete", final.err


def test_an_empty_commit_naming_a_revocation_does_not_block_a_rollback(two_in_prod):
    # A trailer is free text: one unsigned, empty commit saying `Mlops-Revokes: r1` used to
    # make `mlops rollback` refuse r1 (exit 4), so a pusher could keep a bad release in.
    play, _, r1, _ = two_in_prod
    play.pull()
    tree = git(play.clone, "rev-parse", "HEAD^{tree}")
    forged = git(play.clone, "commit-tree", tree, "-p", "HEAD", "-m",
                 f"chore: tidy\n\nMlops-Action: rollback\nMlops-Environment: prod\n"
                 f"Mlops-Revokes: {r1}")
    git(play.clone, "push", "-q", "origin", f"{forged}:refs/heads/main")
    result = play.proj.run("rollback", "--env", "prod", "--reason", "r2 is on fire")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["id"] == r1


ONE_LINE = '            query: sum(rate(errors{revision="{{ revision }}"}[{{ interval }}]))\n'
A_BLOCK = ('            query: |\n'
           '              sum(rate(errors{revision="{{ revision }}"}[{{ interval }}]))\n'
           '              /\n'
           '              sum(rate(requests{revision="{{ revision }}"}[{{ interval }}]))\n')


def test_an_abort_whose_analysis_query_spans_lines_keeps_its_trailers(roll):  # noqa: F811
    # The analysis' query went into an Mlops-Check trailer as it was: its line breaks ended
    # git's trailer block, so the abort lost its action and environment (history skipped it).
    play, keys = roll
    v2 = release_of(play, "staging")["id"]
    tr.push_edit(play, "mlops.yaml", lambda text: text.replace(ONE_LINE, A_BLOCK))
    tr.approve(play, keys, release=v2)
    assert tr.rollout(play, "start").code == 0
    metric = next(e for e in cfg.load_config(play.clone, {}).environments
                  if e.name == "prod").canary.metrics[0]
    query = render_queries(metric, {"revision": "c-2", "baseline_revision": "c-1",
                                    "service": "s", "namespace": "n"}).query
    assert "\n" in query
    save_decision(play.clone, "prod", {
        "env": "prod", "release": v2, "step": 1, "percent": 10, "result": "fail",
        "reasons": ["error-rate: too high"], "finished_at": time.time(),
        "measurements": [{"metric": metric.name, "index": 1, "verdict": "fail", "value": 0.5,
                          "query": query}]})
    assert tr.rollout(play, "abort").code == 0
    trailers = git(play.remote, "log", "-1", "--format=%(trailers:only,unfold)", "main")
    assert "Mlops-Action: rollout-abort" in trailers.splitlines(), trailers
    assert f"Mlops-Revokes: {v2}" in trailers.splitlines(), trailers
    history = play.proj.run("history", "--env", "prod", "--limit", "1", "--json")
    assert history.code == 0 and history.json["entries"][0]["action"] == "rollout-abort", \
        history.out
