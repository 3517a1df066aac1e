"""Training pipeline: fit the `model` component on synthetic data and score it.

Images are never written here: `component_image("model")` is resolved by
`mlops compile` and `mlops run` to the digest pinned for the environment.
The outputs `model` and `metrics` (a flat JSON object of numbers) are what
`mlops run` collects and the promotion gates read.
"""

from typing import NamedTuple

from kfp import dsl

from mlops.dsl import component_image

# With this placeholder the program writes kfp's executor output file, which
# the local runner needs to pick up the output artifacts.
EXECUTOR_INPUT = dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER


@dsl.container_component
def train(
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Artifact],
    samples: int = 400,
    seed: int = 42,
    epochs: int = 300,
):
    return dsl.ContainerSpec(
        image=component_image("model"),
        command=["python3", "-m", "model", "train"],
        args=[
            "--model-out", model.path,
            "--metrics-out", metrics.path,
            "--samples", samples,
            "--seed", seed,
            "--epochs", epochs,
            "--executor-input", EXECUTOR_INPUT,
        ],
    )


class Outputs(NamedTuple):
    model: dsl.Model
    metrics: dsl.Artifact


@dsl.pipeline(name="training", description="Train and score the model on synthetic data.")
def training(samples: int = 400, seed: int = 42, epochs: int = 300) -> Outputs:
    fitted = train(samples=samples, seed=seed, epochs=epochs)
    return Outputs(model=fitted.outputs["model"], metrics=fitted.outputs["metrics"])
