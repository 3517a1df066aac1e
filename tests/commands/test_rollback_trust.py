"""A rollback of an approval-gated environment puts back only what a release manager approved.

The environment's history is commits anyone who can push can write: a commit
with the right trailers and a release record of its own making looks, to the
history alone, like a release that once ran in prod. Rolling back must not
deploy it.
"""

from __future__ import annotations

import pytest

from mlops.release import EnvRecord, Image, Release, render
from tests.commands.conftest import GOOD, built, promote, release_of, to_staging  # noqa: F401
from tests.conftest import git
from tests.support.promotion import Playground, repo_files, ssh_key

pytestmark = pytest.mark.usefixtures("docker_engine")

TO_PROD = ("--to", "prod", "--from", "staging")


@pytest.fixture
def prod(project, built, tmp_path):  # noqa: F811 - pytest fixtures
    """prod runs a release alice approved; (playground, alice's key)."""
    key, public = ssh_key(tmp_path, "alice")
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"alice@example.com {public}\n"}
    play = Playground(tmp_path, project(files))
    to_staging(play, built)
    release = release_of(play, "staging")["id"]
    approved = play.proj.run("approve", "--env", "prod", "--release", release, "--key", str(key),
                             "--principal", "alice@example.com")
    assert approved.code == 0, approved.err
    assert promote(play, *TO_PROD).code == 0
    return play


def push_forged_entry(play) -> Release:
    """Two unsigned commits: prod's record set to a release of the pusher's making (with the
    trailers a promotion writes), then the good record put back, as a "formatting fix"."""
    git(play.clone, "pull", "-q", "--ff-only")
    path = play.clone / "environments/prod/release.yaml"
    good_text = path.read_text()
    good = release_of(play, "prod")
    evil = Release(source_commit="0" * 40,
                   images={n: Image(v["image"], v["digest"]) for n, v in good["images"].items()},
                   pipelines=good["pipelines"], model_uri="s3://attacker/model",
                   metrics={"roc_auc": 0.01})
    path.write_text(render(EnvRecord("prod", evil, "staging")))
    git(play.clone, "commit", "-qam", f"promote(prod): release {evil.id} from staging\n\n"
        f"Mlops-Action: promote\nMlops-Release: {evil.id}\nMlops-Environment: prod\n")
    path.write_text(good_text)
    git(play.clone, "commit", "-qam", "fix formatting")
    git(play.clone, "push", "-q", "origin", "main")
    return evil


def test_a_rollback_never_puts_back_a_release_no_manager_approved(prod):
    good = release_of(prod, "prod")["id"]
    evil = push_forged_entry(prod)
    head = prod.remote_head()
    result = prod.proj.run("rollback", "--env", "prod", "--json")
    assert result.code == 4, result.err
    [line] = result.err.splitlines()
    assert f"signed approval of {evil.id}" in line and "none found" in line, line
    assert prod.remote_head() == head and release_of(prod, "prod")["id"] == good


def test_approved_releases_still_roll_back_also_twice_while_held(prod, built):  # noqa: F811
    releases = [release_of(prod, "prod")["id"]]
    key = prod.base / "alice_ed25519"
    for n, accuracy in ((2, 0.951), (3, 0.952)):  # two more releases, approved by alice
        metrics = prod.metrics(f"m{n}", {**GOOD, "accuracy": accuracy})
        assert promote(prod, "--to", "staging", "--from", "dev", "--metrics",
                       str(metrics)).code == 0
        releases.append(release_of(prod, "staging")["id"])
        assert prod.proj.run("approve", "--env", "prod", "--release", releases[-1], "--key",
                             str(key), "--principal", "alice@example.com").code == 0
        assert promote(prod, *TO_PROD).code == 0
    assert release_of(prod, "prod")["id"] == releases[2] and len(set(releases)) == 3
    result = prod.proj.run("rollback", "--env", "prod")
    assert result.code == 0, result.err
    assert release_of(prod, "prod")["id"] == releases[1]
    # Held now; the first release was approved before the hold, and may still go back.
    result = prod.proj.run("rollback", "--env", "prod", "--to", releases[0])
    assert result.code == 0, result.err
    assert release_of(prod, "prod")["id"] == releases[0]


def test_a_rollback_that_recompiling_would_change_is_refused(project, built, tmp_path):  # noqa: F811
    """The earlier release's record pins no pipelines (the repo had none then); the branch
    has some now, so putting it back would commit another release than the approved one."""
    key, public = ssh_key(tmp_path, "alice")
    files = {**repo_files(built[0]), ".mlops/allowed_signers": f"alice@example.com {public}\n"}
    pipeline = files.pop("pipelines/training.py")
    play = Playground(tmp_path, project(files))
    releases = []
    for n, accuracy in ((1, 0.95), (2, 0.951)):
        to_staging(play, built, {**GOOD, "accuracy": accuracy})
        releases.append(release_of(play, "staging")["id"])
        assert play.proj.run("approve", "--env", "prod", "--release", releases[-1], "--key",
                             str(key), "--principal", "alice@example.com").code == 0
        assert promote(play, *TO_PROD).code == 0, n
    git(play.clone, "pull", "-q", "--ff-only")
    (play.clone / "pipelines").mkdir()
    (play.clone / "pipelines/training.py").write_bytes(pipeline)
    play.proj.commit("add the training pipeline")
    play.proj.git("push", "-q", "origin", "main")
    head = play.remote_head()
    result = play.proj.run("rollback", "--env", "prod")
    assert result.code == 4, result.err
    assert f"release {releases[0]} was approved, but recompiling" in result.err
    assert play.remote_head() == head


def test_a_release_approved_by_a_key_since_removed_can_be_approved_again(project, built,  # noqa: F811
                                                                          tmp_path):
    """Rollback checks the earlier release's approval against today's trust root: after
    alice is removed, what she approved goes back only once bob approves it again, with
    `mlops approve` naming the release prod ran before."""
    keys = {name: ssh_key(tmp_path, name) for name in ("alice", "bob")}
    signers = "".join(f"{n}@example.com {keys[n][1]}\n" for n in keys)
    files = {**repo_files(built[0]), ".mlops/allowed_signers": signers}
    files["mlops.yaml"] = files["mlops.yaml"].replace(
        "release_managers: [alice@example.com]",
        "release_managers: [alice@example.com, bob@example.com]")
    play = Playground(tmp_path, project(files))
    releases = []
    for who, accuracy in (("alice", 0.95), ("bob", 0.951)):
        to_staging(play, built, {**GOOD, "accuracy": accuracy})
        releases.append(release_of(play, "staging")["id"])
        assert play.proj.run("approve", "--env", "prod", "--release", releases[-1], "--key",
                             str(keys[who][0]), "--principal", f"{who}@example.com").code == 0
        assert promote(play, *TO_PROD).code == 0
    git(play.clone, "pull", "-q", "--ff-only")
    config = play.clone / "mlops.yaml"
    config.write_text(config.read_text().replace("alice@example.com, ", ""))
    git(play.clone, "-c", "gpg.format=ssh", "-c", f"user.signingkey={keys['bob'][0]}",
        "commit", "-q", "-S", "-am", "alice leaves")
    git(play.clone, "push", "-q", "origin", "main")
    refused = play.proj.run("rollback", "--env", "prod")
    assert refused.code == 4 and "alice@example.com is not a release manager" in refused.err
    command = refused.err.split("`")[1]  # the approve command the refusal names
    assert command.startswith(f"mlops approve --env prod --release {releases[0]} --digest ")
    again = play.proj.run(*command.split()[1:], "--key", str(keys["bob"][0]),
                          "--principal", "bob@example.com")
    assert again.code == 0, again.err
    result = play.proj.run("rollback", "--env", "prod")
    assert result.code == 0, result.err
    assert release_of(play, "prod")["id"] == releases[0]


def test_a_trust_root_pinned_by_the_flag_is_what_rollback_checks(prod, built, tmp_path):  # noqa: F811
    """`--trust-root FILE` on rollback, as on promote: pinned to a root where only carol
    is a release manager, alice's approval of the earlier release does not count."""
    first = release_of(prod, "prod")["id"]
    metrics = prod.metrics("m2", {**GOOD, "accuracy": 0.951})
    assert promote(prod, "--to", "staging", "--from", "dev", "--metrics", str(metrics)).code == 0
    assert prod.proj.run("approve", "--env", "prod", "--release", release_of(prod, "staging")["id"],
                         "--key", str(prod.base / "alice_ed25519"),
                         "--principal", "alice@example.com").code == 0
    assert promote(prod, *TO_PROD).code == 0
    _, carol = ssh_key(tmp_path, "carol")
    root = tmp_path / "trust-root.yaml"
    root.write_text(f"allowed_signers: |\n  carol@example.com {carol}\n"
                    "release_managers: [carol@example.com]\n")
    head = prod.remote_head()
    pinned = prod.proj.run("rollback", "--env", "prod", "--trust-root", str(root))
    assert pinned.code == 4 and f"approval of {first}" in pinned.err, pinned.err
    assert prod.remote_head() == head
    result = prod.proj.run("rollback", "--env", "prod")  # the branch's root: alice counts
    assert result.code == 0, result.err
    assert release_of(prod, "prod")["id"] == first
