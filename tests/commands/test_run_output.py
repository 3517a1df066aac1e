"""`mlops run` without --output-dir: each run's outputs in a folder of its own,
`.mlops/runs/<run-id>/`, beside its record `.mlops/runs/<run-id>.json`.

A real `kfp.local` run on the real engine, of a one-step pipeline on the tiny
`evaluate` image the session builds once (a few seconds, not the reference
training pipeline's minutes; that one is tests/commands/test_pipeline_e2e.py's).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.promotion import repo_files

pytestmark = pytest.mark.usefixtures("docker_engine")

# The step writes its metrics and model, then kfp's executor output file, which is how
# kfp.local learns of a container component's output artifacts (components/README.md).
SCORE = """\
import json, os, sys
metrics, model, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if float(sys.argv[4]) < 0:
    sys.exit("f1 must not be negative")  # the failing run of the test below
for path in (metrics, model):
    os.makedirs(os.path.dirname(path), exist_ok=True)
with open(metrics, "w") as f:
    json.dump({"accuracy": 0.93, "f1": float(sys.argv[4])}, f)
with open(model, "w") as f:
    f.write("a model")
outputs = spec["outputs"]
listed = {name: {"artifacts": [{"name": a.get("name", ""), "uri": a.get("uri", ""),
                                "metadata": a.get("metadata") or {}}
                               for a in entry.get("artifacts", [])]}
          for name, entry in (outputs.get("artifacts") or {}).items()}
os.makedirs(os.path.dirname(outputs["outputFile"]), exist_ok=True)
with open(outputs["outputFile"], "w") as f:
    json.dump({"artifacts": listed}, f)
"""

PIPELINE = f'''\
from typing import NamedTuple

from kfp import dsl

from mlops.dsl import component_image

SCORE = {SCORE!r}


@dsl.container_component
def score(metrics: dsl.Output[dsl.Artifact], model: dsl.Output[dsl.Model], f1: float = 0.5):
    return dsl.ContainerSpec(
        image=component_image("evaluate"), command=["python3", "-c", SCORE],
        args=[metrics.path, model.path, dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER, f1])


class Outputs(NamedTuple):
    model: dsl.Model
    metrics: dsl.Artifact


@dsl.pipeline(name="tiny")
def tiny(f1: float = 0.5) -> Outputs:
    task = score(f1=f1)
    return Outputs(model=task.outputs["model"], metrics=task.outputs["metrics"])
'''


@pytest.fixture
def compiled(project, built):
    files = {k: v for k, v in repo_files(built[0]).items() if k != "pipelines/training.py"}
    proj = project({**files, "pipelines/tiny.py": PIPELINE})
    result = proj.run("compile", "--env", "dev", "--build", str(built[1]), "--json")
    assert result.code == 0, result.err
    assert [p["pipeline"] for p in result.json["pipelines"]] == ["tiny"]
    return proj


def test_without_output_dir_each_run_gets_its_own_folder_under_mlops_runs(compiled):
    proj = compiled
    runs = proj.path / ".mlops" / "runs"
    seen = []
    for f1 in ("0.5", "0.75"):
        result = proj.run("run", "tiny", "--env", "dev", "--local", "--param", f"f1={f1}",
                          "--json")
        assert result.code == 0, result.err[-3000:]
        doc = result.json
        folder = runs / doc["run_id"]
        assert f"outputs in {folder}" in result.err
        assert doc["metrics_file"] == str(folder / "metrics.json")
        assert json.loads((folder / "metrics.json").read_text()) == doc["metrics"] == {
            "accuracy": 0.93, "f1": float(f1)}
        assert json.loads((folder / "run.json").read_text()) == doc
        assert doc["model_uri"] == (folder / "model").as_uri()
        assert (folder / "model" / "model.joblib").read_text() == "a model"
        record = json.loads((runs / f"{doc['run_id']}.json").read_text())
        assert (record["id"], record["model_uri"]) == (doc["run_id"], doc["model_uri"])
        seen.append(doc)
    first, second = seen
    assert first["run_id"] != second["run_id"]
    # the later run replaced nothing the earlier run's record points to
    first_model = Path(first["model_uri"].removeprefix("file://")) / "model.joblib"
    assert first_model.read_text() == "a model"
    assert json.loads((runs / first["run_id"] / "metrics.json").read_text())["f1"] == 0.5
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == sorted(
        [first["run_id"], second["run_id"]])


def test_a_run_that_fails_records_nothing(compiled):
    """docs/continuous-training.md: "A run that fails records nothing"; `runs list` shows
    only the run that succeeded."""
    proj = compiled
    failed = proj.run("run", "tiny", "--env", "dev", "--local", "--param", "f1=-1", "--json")
    assert failed.code != 0, failed.err[-3000:]
    runs = proj.path / ".mlops" / "runs"
    assert not runs.exists() or list(runs.glob("*.json")) == []
    ok = proj.run("run", "tiny", "--env", "dev", "--local", "--json")
    assert ok.code == 0, ok.err[-3000:]
    listed = proj.run("runs", "list", "--json")
    assert listed.code == 0, listed.err
    assert [r["id"] for r in listed.json["runs"]] == [ok.json["run_id"]]


def test_an_unknown_pipeline_is_a_usage_error_naming_the_known_ones(compiled):
    """Exit 2, like `mlops compile --env dev nope`: compiling would not make it exist."""
    result = compiled.run("run", "nope", "--env", "dev", "--local")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "unknown pipeline 'nope' (known: tiny)" in result.err
    uncompiled = compiled.run("run", "tiny", "--env", "staging", "--local")
    assert uncompiled.code == 1 and "run `mlops compile --env staging` first" in uncompiled.err
