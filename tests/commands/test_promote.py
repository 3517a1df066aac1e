"""`mlops promote`, `history`, `rollback` against real bare remotes and a real registry."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.commands.conftest import GOOD, promote, release_of, to_staging
from tests.conftest import git
from tests.support import crds

pytestmark = pytest.mark.usefixtures("docker_engine")


def render(play, env: str, rev: str = "refs/heads/main") -> str:
    work = play.base / f"render-{env}-{rev[:8].replace('/', '_')}"
    git(play.remote, "worktree", "add", "-q", "--detach", str(work), rev)
    try:
        proc = subprocess.run(["kubectl", "kustomize", str(work / "environments" / env)],
                              capture_output=True, text=True)
    finally:
        git(play.remote, "worktree", "remove", "--force", str(work))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_release_moves_identical_digests_dev_to_staging(play, built):
    # prod (which needs a signed approval) is covered in test_approvals.py
    to_staging(play, built)
    dev, staging = release_of(play, "dev"), release_of(play, "staging")
    build = {b["component"]: b["digest"] for b in json.loads(built[1].read_text())["builds"]}
    assert {n: i["digest"] for n, i in dev["images"].items()} == build
    assert staging["images"] == dev["images"]
    assert staging["pipelines"] == dev["pipelines"]
    assert staging["promoted_from"] == "dev" and staging["metrics"] == GOOD
    for env in ("dev", "staging"):
        text = render(play, env)
        assert sorted(crds.validate_all(text)) == ["InferenceService", "Pipeline", "PipelineVersion"]
        for name, image in staging["images"].items():
            assert f"{image['image']}@{image['digest']}" in text or name == "serve"
    assert play.proj.status() == ""  # the user's clone was never touched


def test_release_file_and_trailers_agree(play, built):
    to_staging(play, built)
    record = release_of(play, "staging")
    message = git(play.remote, "log", "-1", "--format=%B", "refs/heads/main")
    subject = message.splitlines()[0]
    assert subject == f"promote(staging): release {record['id']} from dev"
    assert f"Mlops-Release: {record['id']}" in message
    for name, image in record["images"].items():
        assert f"Mlops-Digest: {name}={image['digest']}" in message
    for gate in record["gates"]:
        assert f"Mlops-Gate: {gate['gate']}={gate['result']}" in message
    assert [g["result"] for g in record["gates"]] == ["pass", "pass"]
    # Every trailer, as git itself parses them, in order: source commit and pipeline too.
    parsed = git(play.remote, "log", "-1", "--format=%(trailers:only,unfold)",
                 "refs/heads/main").splitlines()
    source = json.loads(built[1].read_text())["source_commit"]
    [(pipeline, version)] = record["pipelines"].items()
    compiled = play.remote_show(f"environments/staging/pipelines/{pipeline}.yaml")
    assert (pipeline, record["source_commit"]) == ("training", source)
    assert f"kind: PipelineVersion\nmetadata:\n  name: {version}\n" in compiled
    assert parsed == [
        "Mlops-Action: promote", f"Mlops-Release: {record['id']}",
        "Mlops-Environment: staging", "Mlops-From: dev", f"Mlops-Source-Commit: {source}",
        *(f"Mlops-Digest: {name}={image['digest']}"
          for name, image in sorted(record["images"].items())),
        f"Mlops-Pipeline: training={version}",
        "Mlops-Gate: accuracy-threshold=pass", "Mlops-Gate: accuracy-vs-champion=pass"]


def test_kustomization_diff_touches_only_pinned_lines(play, built):
    odd = ("# Staging: hand-written, odd formatting on purpose.\n"
           "apiVersion: kustomize.config.k8s.io/v1beta1\n"
           "kind:    Kustomization     # spaces\n"
           "namePrefix: 'stg-'\n"
           "resources:\n"
           "    - ../base   # base first\n"
           "commonLabels: {team: ml}\n"
           "images:\n"
           "  # the training image, pinned by mlops\n"
           "  - name: train\n"
           "    newName: \"old.example/train\"   # keep me\n"
           "    digest: sha256:" + "0" * 64 + "\n"
           "  - name: unrelated\n"
           "    newTag: \"1.2\"\n")
    play.proj.write({"environments/staging/kustomization.yaml": odd})
    play.proj.commit("odd staging overlay")
    play.proj.git("push", "-q", "origin", "main")
    to_staging(play, built)
    after = play.remote_show("environments/staging/kustomization.yaml")
    before_lines, after_lines = odd.splitlines(), after.splitlines()
    removed = [line for line in before_lines if line not in after_lines]
    assert removed == ['    newName: "old.example/train"   # keep me',
                       "    digest: sha256:" + "0" * 64]
    for line in before_lines:
        if line not in removed:
            assert line in after_lines, line
    train = release_of(play, "staging")["images"]["train"]
    assert f'    newName: "{train["image"]}"   # keep me' in after_lines
    assert f"    digest: {train['digest']}" in after_lines
    assert "  - name: unrelated" in after_lines and '    newTag: "1.2"' in after_lines


def test_history_and_rollback_with_hold(play, built):
    to_staging(play, built)
    first = release_of(play, "staging")["id"]
    better = {**GOOD, "accuracy": 0.96}
    # a second release into dev, then staging
    play.pull()
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--metrics",
                   str(play.metrics("m2", better))).code == 0
    assert promote(play, "--to", "staging", "--from", "dev").code == 0
    second = release_of(play, "staging")["id"]
    assert second != first

    back = play.proj.run("rollback", "--env", "staging", "--json")
    assert back.code == 0, back.err
    assert back.json["release"] == first and back.json["previous"] == second
    record = release_of(play, "staging")
    assert record["id"] == first and record["hold"]["rolled_back_from"] == second
    assert play.remote_log()[0] == f"rollback(staging): release {first} (was {second})"

    refused = promote(play, "--to", "staging", "--from", "dev")
    assert refused.code == 3 and "environment staging is on hold" in refused.err
    head = play.remote_head()
    assert promote(play, "--to", "staging", "--from", "dev", "--clear-hold").code == 0
    assert play.remote_head() != head and release_of(play, "staging")["hold"] is None

    hist = play.proj.run("history", "--env", "staging", "--json")
    assert hist.code == 0
    actions = [(e["action"], e["release"], e["hold"]) for e in hist.json["entries"]]
    assert actions == [("promote", second, "cleared"), ("rollback", first, "set"),
                       ("promote", second, None), ("promote", first, None)]
    assert hist.json["entries"][-1]["gates"] == {"accuracy-threshold": "pass",
                                                 "accuracy-vs-champion": "pass"}


def test_plan_changes_nothing_and_shows_the_diff(play, built):
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    head = play.remote_head()
    plan = promote(play, "--to", "staging", "--from", "dev", "--metrics",
                   str(play.metrics("m", GOOD)), "--plan", "--json")
    assert plan.code == 0, plan.err
    assert plan.json["status"] == "planned"
    assert "+    digest: sha256:" in plan.json["diff"]
    assert "new file: environments/staging/release.yaml" in plan.json["diff"]
    assert play.remote_head() == head and play.proj.status() == ""


def test_a_plan_says_what_the_promotion_would_do_before_its_diff(play, built):
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    head = play.remote_head()
    passing = promote(play, "--to", "staging", "--from", "dev", "--metrics",
                      str(play.metrics("good", GOOD)), "--plan")
    first = passing.out.splitlines()[0]
    assert first.endswith("from dev to staging; nothing was written, committed or pushed"), first
    failing = promote(play, "--to", "staging", "--from", "dev", "--metrics",
                      str(play.metrics("bad", {**GOOD, "accuracy": 0.1})), "--plan")
    assert failing.code == 3, failing.err  # a plan's gates fail as the promotion's would
    lines = failing.out.splitlines()
    assert "would be refused (a gate fails); nothing was written" in lines[0], lines[0]
    assert any(line.lstrip().startswith("fail") and "accuracy" in line for line in lines)
    assert play.remote_head() == head and play.proj.status() == ""


def test_previous_is_the_release_the_environment_runs_now_in_every_status(play, built):
    """A plan (and a rerun) that changes nothing said `"previous": null`, though the
    environment runs a release; a refused or real promotion named it."""
    plan = promote(play, "--to", "dev", "--build", str(built[1]), "--plan", "--json")
    assert (plan.code, plan.json["status"], plan.json["previous"]) == (0, "planned", None)
    first = promote(play, "--to", "dev", "--build", str(built[1]), "--json")
    assert first.json["previous"] is None
    running = first.json["release"]
    for flags in (["--plan"], []):
        again = promote(play, "--to", "dev", "--build", str(built[1]), *flags, "--json")
        assert again.code == 0, again.err
        assert (again.json["status"], again.json["previous"]) == ("unchanged", running)
    metrics = str(play.metrics("m", GOOD))
    planned = promote(play, "--to", "dev", "--build", str(built[1]), "--metrics", metrics,
                      "--plan", "--json")
    assert planned.code == 0, planned.err
    assert planned.json["status"] == "planned" and planned.json["release"] != running
    assert planned.json["previous"] == running


def test_pr_pushes_a_review_branch(play, built):
    assert promote(play, "--to", "dev", "--build", str(built[1]), "--pr", "--json").code == 0
    branches = git(play.remote, "branch", "--list", "mlops/promote/*").split()
    assert len(branches) == 1 and branches[0].startswith("mlops/promote/dev/r-")
    assert "release.yaml" not in git(play.remote, "ls-tree", "-r", "--name-only", "main")


def test_same_release_twice_is_a_no_op(play, built):
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    head = play.remote_head()
    again = promote(play, "--to", "dev", "--build", str(built[1]), "--json")
    assert again.code == 0 and again.json["status"] == "unchanged"
    assert play.remote_head() == head
