"""Training pipeline: preprocess -> train -> evaluate, on the repository's own components.

Images are never written here: `component_image(name)` is resolved by
`mlops compile` / `mlops run` to the digest pinned for the environment.
The pipeline's outputs are the trained `model` and the evaluation `metrics`
(a plain JSON file, the input of the promotion gates).
"""

from typing import NamedTuple

from kfp import dsl

from mlops.dsl import component_image

# Each program writes kfp's executor output file when given this placeholder,
# which the local runner needs to pick up output artifacts.
EXECUTOR_INPUT = dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER


@dsl.container_component
def preprocess(
    train: dsl.Output[dsl.Dataset],
    test: dsl.Output[dsl.Dataset],
    test_size: float = 0.25,
    seed: int = 42,
):
    return dsl.ContainerSpec(
        image=component_image("preprocess"),
        command=["python3", "-m", "preprocess"],
        args=[
            "--test-size", test_size,
            "--seed", seed,
            "--train-out", train.path,
            "--test-out", test.path,
            "--executor-input", EXECUTOR_INPUT,
        ],
    )


@dsl.container_component
def train(
    train: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    c: float = 1.0,
    max_iter: int = 200,
    seed: int = 42,
):
    return dsl.ContainerSpec(
        image=component_image("train"),
        command=["python3", "-m", "train"],
        args=[
            "--train", train.path,
            "--model-out", model.path,
            "--c", c,
            "--max-iter", max_iter,
            "--seed", seed,
            "--executor-input", EXECUTOR_INPUT,
        ],
    )


@dsl.container_component
def evaluate(
    test: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    metrics_json: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
):
    return dsl.ContainerSpec(
        image=component_image("evaluate"),
        command=["python3", "-m", "evaluate"],
        args=[
            "--test", test.path,
            "--model", model.path,
            "--metrics-out", metrics_json.path,
            "--kfp-metrics-out", metrics.path,
            "--executor-input", EXECUTOR_INPUT,
        ],
    )


class Outputs(NamedTuple):
    model: dsl.Model
    metrics: dsl.Artifact


@dsl.pipeline(name="training", description="Train and evaluate the breast-cancer classifier.")
def training(
    test_size: float = 0.25,
    seed: int = 42,
    c: float = 1.0,
    max_iter: int = 200,
) -> Outputs:
    data = preprocess(test_size=test_size, seed=seed)
    fitted = train(train=data.outputs["train"], c=c, max_iter=max_iter, seed=seed)
    scored = evaluate(test=data.outputs["test"], model=fitted.outputs["model"])
    return Outputs(model=fitted.outputs["model"], metrics=scored.outputs["metrics_json"])
