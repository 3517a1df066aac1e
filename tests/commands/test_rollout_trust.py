"""`rollout abort` of an approval-gated environment puts back only the approved baseline.

Abort (also run by `rollout analyze` on a failing analysis) restores the
canary's baseline at 100% of the stable traffic. It finds that release by the
trailers of earlier commits, and reads which release is the baseline from the
record at HEAD: both are anyone's to write who can push. As with `mlops
rollback`, a record must be the release its commit names, and in a gated
environment only a release a manager approved for it goes back.
"""

from __future__ import annotations

import pytest

from mlops import release as rel
from mlops.records import replace
from mlops.services.envdir import EnvDir
from tests.commands.conftest import built, release_of  # noqa: F401
from tests.commands.test_rollout import fresh, rendered_isvc, roll, rollout  # noqa: F401
from tests.conftest import git
from tests.support.promotion import ssh_key

pytestmark = pytest.mark.usefixtures("docker_engine")


def _record_of(play, release_id: str) -> rel.EnvRecord:
    sha = git(play.clone, "log", "-1", "--format=%H", "--grep", f"Mlops-Release: {release_id}",
              "--", "environments/prod/release.yaml").strip()
    return rel.parse(git(play.clone, "show", f"{sha}:environments/prod/release.yaml"), sha)


def _evil(record: rel.EnvRecord) -> rel.EnvRecord:
    return replace(record, release=replace(record.release, model_uri="pvc://models/EVIL"),
                   approval=None, rollout=None)


def _push_commits(play, *writes) -> None:
    """One commit per (record, message): what anyone who can push can write."""
    for record, message in writes:
        EnvDir(play.clone, "prod").write_record(record)
        play.proj.git("add", "-A")
        play.proj.git("commit", "-q", "-m", message)
    play.proj.git("push", "-q", "origin", "main")


@pytest.fixture
def started(roll):  # noqa: F811
    """A canary against v1 in gated prod; (playground, v1, the canary's record, a record of
    v1 with another model: another release, whose record anyone could write)."""
    play, _ = roll
    v1 = release_of(play, "prod")["id"]
    assert rollout(play, "start").code == 0
    play.pull()
    return play, v1, EnvDir(play.clone, "prod").read_record(), _evil(_record_of(play, v1))


def test_a_record_under_the_baselines_trailers_is_not_the_baseline(started):
    play, v1, canary, evil = started
    _push_commits(play, (evil, f"chore: tidy\n\nMlops-Release: {v1}\nMlops-Environment: prod\n"),
                  (canary, "chore: tidy again"))
    result = rollout(play, "abort", "--reason", "errors at 10%")
    assert result.code == 0, result.err
    record = release_of(play, "prod")
    assert record["id"] == v1 and record["model_uri"] == "pvc://models/cancer-v1"
    predictor = rendered_isvc(play)["spec"]["predictor"]
    assert predictor["containers"][0]["env"][0]["value"] == "pvc://models/cancer-v1"


def test_an_unapproved_release_named_as_baseline_does_not_go_back(started):
    play, v1, canary, evil = started
    assert evil.release.id != v1
    pointed = replace(canary, rollout={**canary.rollout, "baseline": evil.release.id})
    _push_commits(play, (evil, f"chore\n\nMlops-Release: {evil.release.id}\n"
                               "Mlops-Environment: prod\n"),
                  (pointed, "chore: the canary's baseline"))
    head = play.remote_head()
    result = rollout(play, "abort", "--reason", "errors at 10%")
    assert result.code == 4 and f"approval of {evil.release.id}" in result.err, result.err
    assert play.remote_head() == head


def test_a_trust_root_pinned_by_the_flag_is_what_abort_checks(started, tmp_path):
    """`--trust-root FILE` on `rollout abort`: pinned to a root where only carol is a
    release manager, the baseline's approval (by the branch's release manager) does not
    count, and the canary stays; with the branch's root it goes back."""
    play, v1, _, _ = started
    _, carol = ssh_key(tmp_path, "carol")
    root = tmp_path / "trust-root.yaml"
    root.write_text(f"allowed_signers: |\n  carol@example.com {carol}\n"
                    "release_managers: [carol@example.com]\n")
    head = play.remote_head()
    pinned = rollout(play, "abort", "--trust-root", str(root))
    assert pinned.code == 4 and f"approval of {v1}" in pinned.err, pinned.err
    assert play.remote_head() == head
    result = rollout(play, "abort")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["id"] == v1
