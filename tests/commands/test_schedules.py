"""Schedules in git: `schedules:` in mlops.yaml -> KFP ScheduledWorkflows in the overlay.

`mlops compile` and `mlops promote` write one ScheduledWorkflow per schedule into
environments/<env>/schedules/, naming the environment's PipelineVersion; real git,
real `kubectl kustomize`, and KFP's own CRD (tests/data/crds/, vendored from
kubeflow/pipelines 7b70c7b95f6832772efd6fd0029a4024491a0f44, manifests/kustomize/
base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml) plus the controller's Go
types (tests/support/kfp_swf.py, from backend/src/crd/pkg/apis/scheduledworkflow/
v1beta1/types.go). The reference is `spec.pipelineName`, the PipelineVersion's
name: the ids the controller's CreateRun takes (backend/src/crd/controller/
scheduledworkflow/controller.go) are the objects' cluster-assigned uids
(backend/src/apiserver/storage/pipeline_store_kubernetes.go), which git cannot hold.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid

import pytest
import yaml

from tests.commands.conftest import GOOD, promote
from tests.conftest import REPO_ROOT, git, mlops_yaml, reference_files
from tests.support import crds, kfp_swf
from tests.support.promotion import Playground, repo_files

REGISTRY = "registry.example.com/mlops"
SCHEDULES = """\
    schedules:
      - pipeline: training
        name: nightly
        cron: "0 2 * * *"
        parameters:
          c: 0.5
          seed: 7
"""
STAGING_SCHEDULES = """\
    schedules:
      - pipeline: training
        name: every-6h
        interval: 6h
        catchup: false
"""


def with_schedules(config: str, dev: str = SCHEDULES, staging: str = "") -> str:
    config = config.replace("  - name: dev\n", "  - name: dev\n" + dev, 1)
    return config.replace("  - name: staging\n", "  - name: staging\n" + staging, 1)


def fake_digest(name: str, salt: str = "") -> str:
    return "sha256:" + hashlib.sha256(f"{name}{salt}".encode()).hexdigest()


def build_record(salt: str = "") -> dict:
    return {"source_commit": "0" * 40, "registry": REGISTRY, "builds": [
        {"component": c, "image": f"{REGISTRY}/{c}", "tags": ["0.1.0"],
         "digest": fake_digest(c, salt), "input_hash": "0" * 64, "built": True}
        for c in ("preprocess", "train", "evaluate", "serve")]}


@pytest.fixture
def sched_project(project, tmp_path):
    """The reference pipeline and overlays, dev with a nightly schedule; a build record."""
    files = {"mlops.yaml": with_schedules(mlops_yaml("127.0.0.1:5000/mlops")),
             "pipelines/training.py": (REPO_ROOT / "pipelines/training.py").read_bytes(),
             **{k: v for k, v in reference_files().items()
                if k.endswith(("component.yaml", "Dockerfile"))}}
    for path in (REPO_ROOT / "environments").rglob("*.yaml"):
        rel = str(path.relative_to(REPO_ROOT))
        if "/pipelines/" not in rel and "/schedules/" not in rel:
            files[rel] = path.read_bytes()
    proj = project(files)
    build = tmp_path / "build.json"
    build.write_text(json.dumps(build_record()))
    return proj, build


def kustomize(folder) -> list[dict]:
    proc = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_schedule_appears_in_the_rendered_overlay_and_fits_kfps_crd(sched_project):
    proj, build = sched_project
    result = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    assert result.code == 0, result.err
    docs = kustomize(proj.path / "environments/dev")
    [version] = of_kind(docs, "PipelineVersion")
    [swf] = of_kind(docs, "ScheduledWorkflow")
    assert swf["apiVersion"] == "kubeflow.org/v1beta1" and swf["metadata"]["name"] == "nightly"
    assert swf["spec"]["pipelineName"] == version["metadata"]["name"]
    assert swf["metadata"]["labels"]["mlops.dev/pipeline-version"] == version["metadata"]["name"]
    assert swf["spec"]["trigger"] == {"cronSchedule": {"cron": "0 0 2 * * *"}}
    assert swf["spec"]["workflow"]["parameters"] == [{"name": "c", "value": "0.5"},
                                                     {"name": "seed", "value": "7"}]
    assert sorted(crds.validate_all(yaml.safe_dump_all(docs))) == [
        "InferenceService", "Pipeline", "PipelineVersion", "ScheduledWorkflow"]
    assert kfp_swf.problems(swf) == []
    kustomization = (proj.path / "environments/dev/kustomization.yaml").read_text()
    assert kustomization.endswith("  - pipelines/training.yaml\n  - schedules\n")
    assert result.json["schedules"] == [{
        "schedule": "nightly", "pipeline": "training", "version": version["metadata"]["name"],
        "path": "environments/dev/schedules/nightly.yaml"}]


def test_recompiling_writes_the_same_bytes(sched_project):
    proj, build = sched_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    proj.commit("compiled")
    assert proj.run("compile", "--env", "dev", "--build", str(build), "--force").code == 0
    assert proj.status() == ""


def test_a_new_version_moves_the_schedule(sched_project, tmp_path):
    proj, build = sched_project
    first = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps(build_record("v2")))
    second = proj.run("compile", "--env", "dev", "--build", str(other), "--json")
    assert second.code == 0, second.err
    old, new = first.json["pipelines"][0]["version"], second.json["pipelines"][0]["version"]
    assert old != new
    swf = yaml.safe_load((proj.path / "environments/dev/schedules/nightly.yaml").read_text())
    assert swf["spec"]["pipelineName"] == new == second.json["schedules"][0]["version"]


def test_a_schedule_taken_out_of_mlops_yaml_loses_its_file(sched_project):
    proj, build = sched_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    proj.write({"mlops.yaml": mlops_yaml("127.0.0.1:5000/mlops")})
    proj.commit("no schedules")
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    assert not (proj.path / "environments/dev/schedules/nightly.yaml").exists()
    assert of_kind(kustomize(proj.path / "environments/dev"), "ScheduledWorkflow") == []


BAD = [
    ("bad-cron", ('cron: "0 2 * * *"', 'cron: "0 2 * *"'),
     "mlops.yaml:10: cron '0 2 * *' has 4 fields; give 5"),
    ("cron-7-for-sunday", ('cron: "0 2 * * *"', 'cron: "0 2 * * 7"'),
     "mlops.yaml:10: cron '0 2 * * 7' day of week field '7' is outside 0-6"),
    ("unknown-pipeline", ("pipeline: training", "pipeline: trainer"),
     "mlops.yaml:8: schedule 'nightly' of dev: unknown pipeline 'trainer' (known: training)"),
    ("undeclared-parameter", ("c: 0.5", "learning_rate: 0.5"),
     "mlops.yaml:12: schedule 'nightly' of dev: pipeline 'training' declares no parameter "
     "'learning_rate' (declared: c, max_iter, seed, test_size)"),
    ("wrong-type", ("seed: 7", "seed: seven"),
     "mlops.yaml:13: schedule 'nightly' of dev: parameter 'seed' must be a whole number"),
    ("cron-and-interval", ('cron: "0 2 * * *"', 'cron: "0 2 * * *"\n        interval: 1h'),
     "mlops.yaml:8: schedule of 'training' in dev sets both cron and interval"),
]


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_schedule_is_one_line_and_writes_nothing(sched_project, edit, message):
    proj, build = sched_project
    text = (proj.path / "mlops.yaml").read_text()
    assert edit[0] in text
    proj.write({"mlops.yaml": text.replace(edit[0], edit[1], 1)})
    proj.commit("break the schedule")
    before = proj.git("rev-parse", "HEAD")

    result = proj.run("compile", "--env", "dev", "--build", str(build))

    assert result.code == 1, result.err
    assert result.err.count("\n") == 1 and message in result.err, result.err
    assert proj.status() == "" and proj.git("rev-parse", "HEAD") == before
    assert not (proj.path / "environments/dev/pipelines").exists()
    assert not (proj.path / "environments/dev/schedules").exists()


def test_a_bad_schedule_leaves_written_schedules_alone(sched_project):
    proj, build = sched_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    proj.commit("compiled")
    text = (proj.path / "mlops.yaml").read_text()
    proj.write({"mlops.yaml": text.replace("c: 0.5", "c: 0.5\n          nope: 1")})
    # no --force: the pipeline is unchanged (not recompiled), so its parameters are read
    # from the committed manifest
    result = proj.run("compile", "--env", "dev", "--build", str(build))
    assert result.code == 1 and "declares no parameter 'nope'" in result.err
    assert proj.status() == "M mlops.yaml"  # and nothing else


# -- promotion: the schedule moves with the PipelineVersion, in one commit (Docker)


@pytest.fixture
def sched_play(project, built, tmp_path):
    ns, _ = built
    files = repo_files(ns)
    files["mlops.yaml"] = with_schedules(files["mlops.yaml"], staging=STAGING_SCHEDULES)
    return Playground(tmp_path, project(files, name=f"repo-{uuid.uuid4().hex[:6]}"))


def render_at(play, env: str, rev: str) -> list[dict]:
    work = play.base / f"render-{env}-{rev[:8]}"
    git(play.remote, "worktree", "add", "-q", "--detach", str(work), rev)
    try:
        return kustomize(work / "environments" / env)
    finally:
        git(play.remote, "worktree", "remove", "--force", str(work))


def versions_at(play, env: str, rev: str) -> tuple[str, dict]:
    """(PipelineVersion name, ScheduledWorkflow) of `env` as rendered at `rev`."""
    docs = render_at(play, env, rev)
    [version], [swf] = of_kind(docs, "PipelineVersion"), of_kind(docs, "ScheduledWorkflow")
    assert crds.validate_all(yaml.safe_dump(swf)) == ["ScheduledWorkflow"]
    assert kfp_swf.problems(swf) == []
    return version["metadata"]["name"], swf


@pytest.mark.usefixtures("docker_engine")
def test_promotion_moves_the_schedule_to_the_new_version_in_the_same_commit(sched_play, built):
    play = sched_play
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    first = play.remote_head()
    old, swf = versions_at(play, "dev", first)
    assert swf["spec"]["pipelineName"] == old

    # the pipeline changes (a new default: a new IR, a new PipelineVersion) and dev is
    # promoted again: the schedule follows in that same commit
    play.pull()
    source = (play.clone / "pipelines/training.py").read_text()
    assert "c: float = 1.0," in source
    play.proj.write({"pipelines/training.py": source.replace("c: float = 1.0,", "c: float = 0.8,")})
    play.proj.commit("training: c defaults to 0.8")
    play.proj.git("push", "-q", "origin", "main")
    result = promote(play, "--to", "dev", "--build", str(built[1]))
    assert result.code == 0, result.err
    second = play.remote_head()
    new, swf = versions_at(play, "dev", second)
    assert new != old and swf["spec"]["pipelineName"] == new
    changed = git(play.remote, "diff", "--name-only", f"{second}~1", second).splitlines()
    assert {"environments/dev/pipelines/training.yaml",
            "environments/dev/schedules/nightly.yaml"} <= set(changed)

    # into staging: its own schedule, on the version dev has
    staging = promote(play, "--to", "staging", "--from", "dev",
                      "--metrics", str(play.metrics("m", GOOD)))
    assert staging.code == 0, staging.err
    version, swf = versions_at(play, "staging", play.remote_head())
    assert version == new and swf["spec"]["pipelineName"] == new
    assert swf["metadata"]["name"] == "every-6h"
    assert swf["spec"]["trigger"] == {"periodicSchedule": {"intervalSecond": 21600}}
    assert swf["spec"]["noCatchup"] is True and "workflow" not in swf["spec"]
    assert play.proj.status() == ""


# -- validate: what is committed is what mlops.yaml renders


def schedule_problems(proj) -> list[str]:
    result = proj.run("validate", "--env", "dev", "--json")
    return [p["message"] for p in result.json["problems"] if p["check"] == "schedules"]


@pytest.fixture
def compiled_schedules(sched_project):
    proj, build = sched_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    proj.commit("compiled")
    return proj


def test_validate_accepts_schedules_as_compiled(compiled_schedules):
    proj = compiled_schedules
    result = proj.run("validate", "--env", "dev", "--json")
    assert [p for p in result.json["problems"] if p["check"] == "schedules"] == []
    [check] = [c for c in result.json["checks"] if c.get("env") == "dev"]
    assert check["schedules"] == 1
    assert "1 schedules" in proj.run("validate", "--env", "dev").out


DRIFT = [
    ("cron-changed-not-compiled", {"mlops.yaml": ('cron: "0 2 * * *"', 'cron: "0 3 * * *"')},
     "environments/dev/schedules/nightly.yaml: differs from schedule 'nightly' as mlops.yaml "
     "and training's compiled version"),
    ("file-edited-by-hand", {"environments/dev/schedules/nightly.yaml": ("0 0 2 * * *",
                                                                         "0 0 4 * * *")},
     "environments/dev/schedules/nightly.yaml: differs from schedule 'nightly'"),
    ("schedule-added-not-compiled", {"mlops.yaml": ("          seed: 7\n",
                                                    "          seed: 7\n"
                                                    "      - pipeline: training\n"
                                                    "        name: weekly\n"
                                                    "        cron: \"0 2 * * 0\"\n")},
     "environments/dev/schedules/weekly.yaml: schedule 'weekly' of mlops.yaml is not written; "
     "run `mlops compile --env dev`"),
    ("overlay-lost-the-folder", {"environments/dev/kustomization.yaml": ("  - schedules\n", "")},
     "environments/dev/kustomization.yaml: does not list 'schedules', so no schedule reaches "
     "the cluster"),
    ("listing-edited", {"environments/dev/schedules/kustomization.yaml": (
        "- nightly.yaml", "- nightly.yaml  # edited by hand")},
     "environments/dev/schedules/kustomization.yaml: is not the listing of dev's schedules"),
]


@pytest.mark.parametrize(("edits", "message"), [c[1:] for c in DRIFT], ids=[c[0] for c in DRIFT])
def test_validate_finds_schedules_that_drifted_from_mlops_yaml(compiled_schedules, edits,
                                                               message):
    proj = compiled_schedules
    for rel, (old, new) in edits.items():
        text = (proj.path / rel).read_text()
        assert old in text, rel
        proj.write({rel: text.replace(old, new, 1)})
    problems = schedule_problems(proj)
    assert any(p.startswith(message) for p in problems), problems
    result = proj.run("validate", "--env", "dev")
    assert result.code == 1


def test_validate_finds_a_schedule_file_nothing_names(compiled_schedules):
    proj = compiled_schedules
    proj.write({"mlops.yaml": mlops_yaml("127.0.0.1:5000/mlops")})
    assert schedule_problems(proj) == [
        "environments/dev/schedules/nightly.yaml: no schedule of dev in mlops.yaml names it; "
        "run `mlops compile --env dev`",
        "environments/dev/schedules/kustomization.yaml: is not the listing of dev's schedules "
        "that mlops writes; run `mlops compile --env dev`"]
