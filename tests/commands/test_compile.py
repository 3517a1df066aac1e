"""`mlops compile`: golden files, determinism, CRD validity, cache, bad input.

No Docker needed: images come from a fixed build record with made-up digests.
Regenerate the golden files on purpose with MLOPS_REGENERATE_GOLDEN=1.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, mlops_yaml, reference_files
from tests.support import crds

GOLDEN_DIR = REPO_ROOT / "pipelines"
REGISTRY = "registry.example.com/mlops"
EXAMPLES = sorted(p.stem for p in GOLDEN_DIR.glob("*.py") if not p.name.startswith("_"))


def fake_digest(name: str, salt: str = "") -> str:
    return "sha256:" + hashlib.sha256(f"{name}{salt}".encode()).hexdigest()


def build_record(salts: dict[str, str] | None = None) -> dict:
    salts = salts or {}
    return {"source_commit": "0" * 40, "registry": REGISTRY, "builds": [
        {"component": c, "image": f"{REGISTRY}/{c}", "tags": ["0.1.0"],
         "digest": fake_digest(c, salts.get(c, "")), "input_hash": "0" * 64,
         "built": True}
        for c in ("preprocess", "train", "evaluate", "serve")]}


def repo_files(*roots: str) -> dict[str, bytes]:
    out = {}
    for root in roots:
        for path in (REPO_ROOT / root).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and "golden" not in path.name:
                out[str(path.relative_to(REPO_ROOT))] = path.read_bytes()
    return out


@pytest.fixture
def pipeline_project(project, tmp_path):
    files = {"mlops.yaml": mlops_yaml("127.0.0.1:5000/mlops"),
             **{k: v for k, v in reference_files().items() if k.endswith(("component.yaml", "Dockerfile"))},
             **repo_files("pipelines", "environments")}
    files = {k: v for k, v in files.items() if "/pipelines/" not in k or not k.startswith("environments/")}
    proj = project(files)
    build = tmp_path / "build.json"
    build.write_text(json.dumps(build_record()))
    return proj, build


def compiled(proj, name: str = "training", env: str = "dev") -> str:
    return (proj.path / f"environments/{env}/pipelines/{name}.yaml").read_text()


@pytest.mark.parametrize("name", EXAMPLES)
def test_golden_file_matches_a_fresh_compile(pipeline_project, name):
    proj, build = pipeline_project
    result = proj.run("compile", name, "--env", "dev", "--build", str(build))
    assert result.code == 0, result.err
    fresh = compiled(proj, name)
    golden = GOLDEN_DIR / f"{name}.golden.yaml"
    if os.environ.get("MLOPS_REGENERATE_GOLDEN") == "1":
        golden.write_text(fresh)
    diff = "".join(difflib.unified_diff(golden.read_text().splitlines(True),
                                        fresh.splitlines(True), "golden", "fresh"))
    assert diff == "", f"{golden.name} is stale (MLOPS_REGENERATE_GOLDEN=1 to accept):\n{diff}"


def test_a_build_record_entry_without_an_image_is_refused_before_any_write(pipeline_project):
    proj, build = pipeline_project
    record = build_record()
    del record["builds"][1]["image"]
    build.write_text(json.dumps(record))
    before = {p: p.read_bytes() for p in (proj.path / "environments").rglob("*") if p.is_file()}
    result = proj.run("compile", "--env", "dev", "--build", str(build))
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "component 'train': None is not an image repository" in result.err
    after = {p: p.read_bytes() for p in (proj.path / "environments").rglob("*") if p.is_file()}
    assert after == before


def test_compiling_twice_is_byte_identical(pipeline_project):
    proj, build = pipeline_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    first = compiled(proj)
    forced = proj.run("compile", "--env", "dev", "--build", str(build), "--force", "--json")
    assert forced.code == 0 and forced.json["pipelines"][0]["status"] == "compiled"
    assert compiled(proj) == first


def test_unchanged_pipeline_is_not_recompiled(pipeline_project):
    proj, build = pipeline_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    again = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    assert again.code == 0
    assert [p["status"] for p in again.json["pipelines"]] == ["unchanged"]
    proj.write({"pipelines/training.py": (proj.path / "pipelines/training.py").read_text()
                + "\n# a comment changes the source hash\n"})
    third = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    assert [p["status"] for p in third.json["pipelines"]] == ["compiled"]


# Any Python process started with the shim on its PYTHONPATH (the CLI and its compile
# child) appends its pid to $KFP_PROBE the moment something imports kfp.
KFP_SHIM = """\
import os, sys


class _Probe:
    def find_spec(self, name, path=None, target=None):
        if name == "kfp":
            with open(os.environ["KFP_PROBE"], "a") as f:
                f.write(f"{os.getpid()}\\n")
        return None


sys.meta_path.insert(0, _Probe())
"""
CLI = """
import sys
import mlops.cli
code = mlops.cli.main(sys.argv[1:])
print("--- kfp loaded:", "kfp" in sys.modules, code)
"""


def test_an_unchanged_pipeline_does_not_even_import_kfp(pipeline_project, tmp_path):
    """README: an unchanged pipeline is not recompiled, and kfp is not even imported,
    neither by mlops nor by a compile child. A fresh process, as a user runs it."""
    proj, build = pipeline_project
    shim, probe = tmp_path / "kfp-probe", tmp_path / "kfp-imports"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(KFP_SHIM)
    env = {**os.environ, "KFP_PROBE": str(probe), "PYTHONPATH": os.pathsep.join(
        [str(shim), *filter(None, [os.environ.get("PYTHONPATH")])])}

    def compile_in_a_fresh_process() -> tuple[str, str]:
        probe.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-c", CLI, "compile", "--env", "dev", "--build", str(build),
             "--json", "--repo", str(proj.path)], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        doc, _, tail = proc.stdout.rpartition("--- kfp loaded:")
        assert tail.split() == ["False", "0"], tail  # mlops itself never imports kfp
        [status] = [p["status"] for p in json.loads(doc)["pipelines"]]
        return status, probe.read_text() if probe.exists() else ""

    status, imports = compile_in_a_fresh_process()  # cold: the compile child imports kfp
    assert status == "compiled" and imports, imports
    assert compile_in_a_fresh_process() == ("unchanged", "")  # warm: no process imports it


def test_one_digest_changes_exactly_that_image_and_the_version_name(pipeline_project, tmp_path):
    proj, build = pipeline_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    before = compiled(proj).splitlines()
    other = tmp_path / "other.json"
    other.write_text(json.dumps(build_record({"train": "v2"})))
    assert proj.run("compile", "--env", "dev", "--build", str(other)).code == 0
    after = compiled(proj).splitlines()
    assert len(before) == len(after)
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == 2, changed
    (name_before, name_after), (image_before, image_after) = changed
    assert name_before.strip().startswith("name: training-") and name_after != name_before
    assert fake_digest("train") in image_before and fake_digest("train", "v2") in image_after


def _other_kfp_version() -> str:
    installed = importlib.metadata.version("kfp")
    return "2.16.0" if installed != "2.16.0" else "2.16.1"


def test_another_kfp_release_gives_a_new_version_name_and_misses_the_cache(
        pipeline_project, monkeypatch):
    """kfp 2.16.0 and 2.16.1 compile the same pipeline into specs that differ in
    `sdkVersion`; KFP's webhook refuses that change in place ("Pipeline spec is
    immutable": kubeflow/pipelines backend/src/apiserver/webhook/
    pipelineversion_webhook.go, ValidateUpdate), so the name must change.

    No second kfp is installed: the real compiler stamps `kfp.__version__`, read
    when it compiles (kfp/compiler/pipeline_spec_builder.py, `sdk_version =
    f'kfp-{kfp.__version__}'`), so setting that attribute in the compiler process
    (a `sitecustomize` on its PYTHONPATH) is what another kfp release would do to
    the IR, and `kfpc.sdk_version` is what mlops reads for its cache key. The second compile has no --force: the cache has to notice."""
    proj, build = pipeline_project
    first = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    assert first.code == 0, first.err
    before = compiled(proj).splitlines()
    other = _other_kfp_version()
    shim = proj.path.parent / "other-kfp"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(f"import kfp\nkfp.__version__ = {other!r}\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(shim), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setattr("mlops.adapters.kfpc.sdk_version", lambda: other)
    again = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    assert again.code == 0, again.err
    assert again.json["pipelines"][0]["status"] == "compiled"
    after = compiled(proj).splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert [a.strip() for _, a in changed] == [
        f"name: {again.json['pipelines'][0]['version']}", f"sdkVersion: kfp-{other}"]
    assert again.json["pipelines"][0]["version"] != first.json["pipelines"][0]["version"]
    monkeypatch.undo()
    back = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    assert back.json["pipelines"][0]["version"] == first.json["pipelines"][0]["version"]
    assert compiled(proj).splitlines() == before


def test_a_cache_from_another_naming_rule_is_not_served(pipeline_project, monkeypatch):
    proj, build = pipeline_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    monkeypatch.setattr("mlops.pipelines.NAMING_RULE", "an-older-rule")
    again = proj.run("compile", "--env", "dev", "--build", str(build), "--json")
    assert [p["status"] for p in again.json["pipelines"]] == ["compiled"]


def test_manifests_validate_against_crds_and_render(pipeline_project):
    proj, build = pipeline_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    assert crds.validate_all(compiled(proj)) == ["Pipeline", "PipelineVersion"]
    rendered = subprocess.run(["kubectl", "kustomize", str(proj.path / "environments/dev")],
                              capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    assert sorted(crds.validate_all(rendered.stdout)) == [
        "InferenceService", "Pipeline", "PipelineVersion"]
    kustomization = (proj.path / "environments/dev/kustomization.yaml").read_text()
    assert kustomization.endswith("  - ../base\n  - pipelines/training.yaml\n")


def test_every_executor_image_is_a_digest(pipeline_project):
    proj, build = pipeline_project
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    images = [line.split("image: ", 1)[1] for line in compiled(proj).splitlines()
              if line.strip().startswith("image: ")]
    assert len(images) == 3
    assert all("@sha256:" in image and image.startswith(REGISTRY) for image in images)


def test_images_come_from_the_overlay_pins(pipeline_project):
    proj, _build = pipeline_project
    pins = "".join(f"  - name: {c}\n    newName: {REGISTRY}/{c}\n    digest: {fake_digest(c)}\n"
                   for c in ("preprocess", "train", "evaluate"))
    path = proj.path / "environments/staging/kustomization.yaml"
    path.write_text(path.read_text() + "images:\n" + pins)
    proj.commit("pin staging")
    result = proj.run("compile", "--env", "staging", "--json")
    assert result.code == 0, result.err
    assert fake_digest("evaluate") in compiled(proj, env="staging")


BAD = [
    ("import-error", {"pipelines/training.py": "import nonexistent_module_xyz\n"}, [], 1,
     "pipelines/training.py: failed to import: ModuleNotFoundError: No module named 'nonexistent_module_xyz' (line 1)"),
    ("syntax-error", {"pipelines/training.py": "def broken(:\n"}, [], 1,
     "pipelines/training.py: failed to import: SyntaxError"),
    ("no-pipeline", {"pipelines/training.py": "X = 1\n"}, [], 1,
     "pipelines/training.py: defines no pipeline (no @dsl.pipeline function)"),
    ("unknown-component", {"pipelines/training.py": None}, [], 1,
     "pipelines/training.py: references unknown component 'nosuch'"),
    ("unknown-env", {}, ["--env", "qa"], 2, "unknown environment 'qa' (known: dev, staging, prod)"),
    ("unknown-pipeline", {}, ["nosuch"], 2, "unknown pipeline 'nosuch' (known: training)"),
    ("no-pin", {}, ["--no-build"], 1,
     "pipelines/training.py: environment dev has no pinned image for component 'preprocess'"),
    ("tag-not-digest", {"build.json": "tag"}, [], 1,
     "executor exec-evaluate uses image 'registry.example.com/mlops/evaluate:0.1.0', not pinned by digest; environment dev requires digests"),
    ("malformed-build", {"build.json": "{nope"}, [], 1, "not a readable JSON build record"),
    ("two-files-one-name", {"pipelines/train_ing.py": "X = 1\n",
                            "pipelines/train-ing.py": "X = 2\n"}, [], 1,
     "pipelines/train-ing.py and pipelines/train_ing.py both compile to the pipeline "
     "'train-ing'; rename one"),
]


@pytest.mark.parametrize(("files", "args", "code", "message"), [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_bad_input(pipeline_project, files, args, code, message):
    proj, build = pipeline_project
    source = (proj.path / "pipelines/training.py").read_text()
    for rel, content in files.items():
        if rel == "build.json":
            record = build_record()
            for b in record["builds"]:
                b["digest"] = None
            build.write_text(json.dumps(record) if content == "tag" else content)
        elif content is None:
            proj.write({rel: source.replace('component_image("train")', 'component_image("nosuch")')})
        else:
            proj.write({rel: content})
    if files:
        proj.commit("break it")
    env = ["--env", "dev"] if "--env" not in args else []
    extra = [a for a in args if a != "--no-build"]
    build_args = [] if "--no-build" in args else ["--build", str(build)]
    before = proj.git("rev-parse", "HEAD")

    result = proj.run("compile", *env, *extra, *build_args)

    assert result.code == code, result.err
    assert result.err.count("\n") == 1 and message in result.err, result.err
    assert proj.status() == "" and proj.git("rev-parse", "HEAD") == before
    assert not (proj.path / "environments/dev/pipelines").exists()


def test_an_environment_folder_committed_as_a_link_is_refused(pipeline_project):
    """`environments/dev -> staging` would make `compile --env dev` write staging's files."""
    proj, build = pipeline_project
    shutil.rmtree(proj.path / "environments" / "dev")
    (proj.path / "environments" / "dev").symlink_to("staging")
    proj.commit("dev is staging")
    staging = {p.name: p.read_bytes() for p in (proj.path / "environments/staging").iterdir()}
    result = proj.run("compile", "--env", "dev", "--build", str(build))
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "environments/dev" in result.err and "link" in result.err, result.err
    assert {p.name: p.read_bytes()
            for p in (proj.path / "environments/staging").iterdir()} == staging
    assert proj.status() == ""


def test_a_rewritten_kustomization_keeps_its_permissions(pipeline_project):
    proj, build = pipeline_project
    kustomization = proj.path / "environments/dev/kustomization.yaml"
    kustomization.chmod(0o644)
    assert proj.run("compile", "--env", "dev", "--build", str(build)).code == 0
    assert "pipelines/training.yaml" in kustomization.read_text()  # it was rewritten
    assert stat.S_IMODE(kustomization.stat().st_mode) == 0o644
    written = proj.path / "environments/dev/pipelines/training.yaml"
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_output_path_that_is_a_directory_is_named_in_the_error(pipeline_project):
    proj, build = pipeline_project
    target = proj.path / "environments/dev/pipelines/training.yaml"
    target.mkdir(parents=True)
    kustomization = (proj.path / "environments/dev/kustomization.yaml").read_text()

    result = proj.run("compile", "--env", "dev", "--build", str(build))

    assert result.code == 1, result.err
    # it named the temp file of the atomic write, `.training.yaml.<random>`, not the target
    assert result.err == ("mlops: error: environments/dev/pipelines/training.yaml is not a "
                          "file (a folder, a device or a FIFO); compile writes the pipeline's "
                          "manifest there: move it away\n")
    assert os.listdir(target.parent) == ["training.yaml"] and target.is_dir()
    assert (proj.path / "environments/dev/kustomization.yaml").read_text() == kustomization


def test_no_manifest_is_written_when_a_later_ones_place_is_a_folder(pipeline_project):
    # Checked before the first write: `another` (sorted first) used to be written, and left
    # behind, before training's place turned out to be a folder.
    proj, build = pipeline_project
    proj.write({"pipelines/another.py": (proj.path / "pipelines/training.py").read_text()})
    proj.commit("a second pipeline")
    (proj.path / "environments/dev/pipelines/training.yaml").mkdir(parents=True)
    result = proj.run("compile", "--env", "dev", "--build", str(build))
    assert result.code == 1, result.err
    assert os.listdir(proj.path / "environments/dev/pipelines") == ["training.yaml"]
    assert "training.yaml is not a file" in result.err, result.err
