"""Inconsistent state: records that disagree with the overlay, with the registry, with history,
and a work tree or remote in no state to promote from.

The `staged` world holds real promotions of real images, so "missing from
the registry" and "disagrees with" are measured against the real thing.
"""

from __future__ import annotations

import re

from mlops import release as rel
from tests.bad_inputs.corpus import (
    BOMB,
    FAKE_DIGEST,
    Case,
    build_record,
    check,
    committed,
    nothing,
    params,
    with_input,
)
from tests.conftest import tiny_component

STAGING = "environments/staging/release.yaml"
STAGING_KUST = "environments/staging/kustomization.yaml"
TO_PROD = ["promote", "--to", "prod", "--from", "staging"]
PROMOTE_DEV = ["promote", "--to", "dev", "--build", "{base}/build.json"]


def _record(edit):
    return lambda w: build_record(w, edit=edit)


def _drop(name):
    return _record(lambda r: r.update(builds=[b for b in r["builds"] if b["component"] != name]))


def _hand_edited_metric(world):
    world.edit(STAGING, "accuracy: 0.95", "accuracy: 0.99")


def _pin_elsewhere(world):
    text = world.text(STAGING_KUST)
    digest = re.search(r"name: train\n(?:.*\n)*?\s+digest: (sha256:\w+)", text).group(1)
    world.push({STAGING_KUST: text.replace(digest, FAKE_DIGEST)})


def _dev_record_in_staging(world):
    world.push({STAGING: world.text("environments/dev/release.yaml")})


def _missing_source_commit(world):
    """staging's record rewritten (with a matching id) to name a commit no clone has."""
    record = rel.parse(world.text(STAGING), STAGING)
    release = rel.Release("f" * 40, record.release.images, record.release.pipelines,
                          record.release.model_uri, record.release.metrics)
    new = rel.EnvRecord("staging", release, record.promoted_from, record.gates)
    # and pin the base's `serve` placeholder, as a repo with a serve component would
    serve = (f"  - name: serve\n    newName: {world.ns}/serve\n"
             f"    digest: {record.release.images['train'].digest}\n")
    kustomization = world.text(STAGING_KUST).replace("images:\n", "images:\n" + serve, 1)
    files = {STAGING: rel.render(new), STAGING_KUST: kustomization}
    patch = "environments/staging/inferenceservice-patch.yaml"  # its MLOPS_RELEASE, too
    if (world.clone / patch).exists():
        files[patch] = world.text(patch).replace(record.release.id, release.id)
    world.push(files)


def _extra_env(world):
    world.commit({"mlops.yaml": world.text("mlops.yaml").replace(
        "approvals:", "  - name: qa\napprovals:")})
    build_record(world)


def _then_env(setup, env):
    """`setup`, then run the command with `env` set."""
    def run(world):
        setup(world)
        return env
    return run


def _dirty(world):
    (world.clone / "environments/dev/kustomization.yaml").write_text("# a local edit\n")
    build_record(world)


def _detached(world):
    world.git("checkout", "-q", "--detach")
    build_record(world)


def _remote_gone(world):
    world.git("remote", "set-url", "origin", str(world.base / "gone.git"))
    build_record(world)


def _pipeline_using(component):
    def setup(world):
        source = world.text("pipelines/training.py").replace(
            'component_image("evaluate")', f'component_image("{component}")')
        world.commit({"pipelines/training.py": source})
        build_record(world)
    return setup


def _pipeline_source(source):
    def setup(world):
        world.commit({"pipelines/training.py": source})
        build_record(world)
    return setup


def _validated(files):
    """A setup for `mlops validate --env dev`: the serve component its base needs, plus `files`."""
    return committed({**tiny_component("serve"), **files})


RECORD_STATE = [
    Case("release-yaml-edited-by-hand", "staged", _hand_edited_metric, TO_PROD, 1,
         "does not match its content ("),
    Case("release-yaml-disagrees-with-kustomization", "staged", _pin_elsewhere, TO_PROD, 1,
         "; staging does not run the release it records (`mlops validate`)"),
    Case("release-yaml-of-another-environment", "staged", _dev_record_in_staging, TO_PROD, 1,
         f"{STAGING}: is the record of environment 'dev', not 'staging'"),
    Case("release-evidence-metrics-changed", "staged",
         with_input("other.json", '{"accuracy": 0.99, "roc_auc": 0.99}'),
         [*TO_PROD, "--metrics", "{base}/other.json"], 1,
         "already carries evaluation metrics; a release's evidence cannot change"),
    Case("release-evidence-model-changed", "staged", nothing,
         [*TO_PROD, "--model-uri", "pvc://models/swapped"], 1,
         "already has model URI pvc://models/cancer-v2"),
    Case("rollback-with-nothing-earlier", "staged", nothing, ["rollback", "--env", "prod"], 1,
         "environment prod has no release to roll back"),
    Case("rollback-to-release-never-there", "staged", nothing,
         ["rollback", "--env", "staging", "--to", "r-000000000000"], 1,
         "release r-000000000000 was never in staging (or is the current one)"),
    Case("approve-release-not-waiting", "staged", nothing,
         ["approve", "--env", "prod", "--release", "r-000000000000", "--key",
          "{base}/alice_ed25519"], 1, "release r-000000000000 is not the one waiting in staging"),
    Case("nothing-in-source-environment", "bare", nothing,
         ["promote", "--to", "staging", "--from", "dev"], 1,
         "environment dev has no release to promote yet"),
    Case("skip-an-environment", "bare", nothing, ["promote", "--to", "prod", "--from", "dev"], 2,
         "environments move in order (dev -> staging -> prod); prod takes releases from staging"),
]

BUILD_STATE = [
    Case("digest-missing-from-registry", "bare", lambda w: build_record(w),
         PROMOTE_DEV, 1, "is not what the registry serves for ih-00000000000000000000 "
         "(nothing); refusing the build record"),
    Case("build-record-lacks-component", "bare", _drop("train"), PROMOTE_DEV, 1,
         "no build of component 'train'"),
    Case("build-record-names-unknown-component", "bare",
         _record(lambda r: r["builds"].append({**r["builds"][0], "component": "ghost"})),
         PROMOTE_DEV, 1, "builds component 'ghost', which components/ does not have"),
    Case("build-record-tag-not-digest", "bare",
         _record(lambda r: r["builds"][0].update(digest=None)), PROMOTE_DEV, 1,
         "component 'evaluate' has no digest (tags ['0.1.0'])"),
    Case("build-record-without-source-commit", "bare",
         _record(lambda r: r.pop("source_commit")), PROMOTE_DEV, 1,
         "source_commit None is not a commit id"),
    Case("build-record-missing", "bare", nothing, PROMOTE_DEV, 1, "build record not found"),
    Case("build-record-not-json", "bare", with_input("build.json", "{builds: ["), PROMOTE_DEV,
         1, "not a readable JSON build record"),
    Case("build-record-without-builds", "bare", with_input("build.json", '{"builds": {}}'),
         PROMOTE_DEV, 1, "not a build record (no 'builds' list)"),
]

COMPILE = ["compile", "--env", "dev", "--build", "{base}/build.json"]

TREE_STATE = [
    Case("overlay-missing-for-environment", "bare", _extra_env,
         ["compile", "--env", "qa", "--build", "{base}/build.json"], 1,
         "environments/qa/kustomization.yaml: not found (environment qa has no overlay)"),
    Case("dirty-work-tree", "bare", _dirty, PROMOTE_DEV, 1,
         "has uncommitted changes; commit or stash them first"),
    Case("detached-head", "bare", _detached, PROMOTE_DEV, 1,
         "HEAD is detached; check out a branch first"),
    Case("unreachable-remote", "bare", _remote_gone, PROMOTE_DEV, 1, "cannot clone"),
    Case("remote-without-the-branch", "bare",
         lambda w: w.commit({"mlops.yaml": w.text("mlops.yaml") + "git: {branch: release}\n"}),
         ["history"], 1, "has no branch 'release'"),
    Case("compile-tag-where-digest-required", "bare",
         _record(lambda r: [b.update(digest=None) for b in r["builds"]]), COMPILE, 1,
         "not pinned by digest; environment dev requires digests"),
    Case("compile-without-pins-or-build", "bare", nothing, ["compile", "--env", "dev"], 1,
         "environment dev has no pinned image for component 'preprocess'"),
    Case("pipeline-uses-unknown-component", "bare", _pipeline_using("ghost"), COMPILE, 1,
         "references unknown component 'ghost'"),
    Case("pipeline-exits-at-import", "bare", _pipeline_source("import sys\nsys.exit(3)\n"),
         COMPILE, 1, "pipelines/training.py: failed to import: SystemExit: 3 (line 2)"),
    Case("pipeline-syntax-error", "bare", _pipeline_source("def pipeline(:\n"), COMPILE, 1,
         "pipelines/training.py: failed to import: SyntaxError"),
    # Pipeline files are user code: imported in a child process, bounded in time (issue 16)
    Case("pipeline-kills-its-process-at-import", "bare",
         _pipeline_source("import os\nos._exit(0)\n"), COMPILE, 1,
         "pipelines/training.py: the compiler process ended (exit 0) before it compiled "
         "the pipeline"),
    Case("pipeline-import-never-returns", "bare",
         _then_env(_pipeline_source("import time\ntime.sleep(3600)\n"),
                   {"MLOPS_COMPILE_TIMEOUT": "2"}), COMPILE, 1,
         "pipelines/training.py: importing and compiling it took longer than 2s "
         "($MLOPS_COMPILE_TIMEOUT)"),
    Case("compile-timeout-not-a-number", "bare",
         _then_env(_record(None), {"MLOPS_COMPILE_TIMEOUT": "soon"}), COMPILE, 2,
         "$MLOPS_COMPILE_TIMEOUT must be a number of seconds above 0, got 'soon'"),
    Case("run-before-compile", "bare", nothing, ["run", "training", "--env", "dev", "--local"],
         1, "not compiled for environment dev; run `mlops compile --env dev` first"),
    Case("run-compiled-pipeline-is-garbage", "bare",
         committed({"environments/dev/pipelines/training.yaml": bytes(range(256))}),
         ["run", "training", "--env", "dev", "--local"], 1, "not UTF-8 text"),
]

VALIDATE = ["validate", "--env", "dev", "--json"]

VALIDATE_STATE = [
    Case("validate-overlay-does-not-render", "bare",
         _validated({"environments/dev/kustomization.yaml":
                     "resources:\n  - ../base\n  - gone.yaml\n"}), VALIDATE, 1,
         "environments/dev: kubectl kustomize environments/dev failed", channel="validate"),
    Case("validate-mutable-tag-pinned", "bare",
         _validated({"environments/dev/kustomization.yaml":
                     "resources:\n  - ../base\nimages:\n  - name: serve\n"
                     "    newName: example.org/serve\n    newTag: latest\n"}), VALIDATE, 1,
         "is 'example.org/serve:latest', a mutable reference", channel="validate"),
    Case("validate-release-yaml-bomb", "bare",
         _validated({"environments/dev/release.yaml": "kind: Release\n" + BOMB
                     + "source_commit: *i\n"}), VALIDATE, 1,
         "YAML anchors and aliases are not allowed", channel="validate", process=True),
    Case("validate-compiled-pipeline-garbage", "bare",
         _validated({"environments/dev/pipelines/training.yaml": b"\xff\xfe" * 64}), VALIDATE,
         1, "environments/dev/pipelines/training.yaml:1: not UTF-8 text", channel="validate"),
    Case("validate-source-commit-missing", "staged", _missing_source_commit,
         ["validate", "--env", "staging", "--json"], 1,
         "source commit ffffffffffff is not in this clone", channel="validate"),
]


@params(RECORD_STATE + BUILD_STATE + TREE_STATE + VALIDATE_STATE)
def test_inconsistent_state(world, case, capsys):
    check(world, case, capsys)

