"""Data, model and metrics: logistic regression by gradient descent on synthetic blobs."""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

FEATURES = 4


@dataclass(frozen=True)
class Model:
    weights: list[float]
    bias: float

    def probability(self, row: list[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, row, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def predict(self, rows: list[list[float]]) -> list[int]:
        return [int(self.probability(row) >= 0.5) for row in rows]


def dataset(samples: int, seed: int) -> tuple[list[list[float]], list[int]]:
    """Two Gaussian blobs, one per class, centred at -0.75 and +0.75 in every feature."""
    rng = random.Random(seed)  # noqa: S311 - data, not secrets
    labels = [i % 2 for i in range(samples)]
    rows = [[rng.gauss(1.5 * y - 0.75, 1.0) for _ in range(FEATURES)] for y in labels]
    return rows, labels


def fit(rows: list[list[float]], labels: list[int], epochs: int, lr: float) -> Model:
    weights, bias = [0.0] * FEATURES, 0.0
    for _ in range(epochs):
        model = Model(weights, bias)
        errors = [model.probability(row) - y for row, y in zip(rows, labels, strict=True)]
        bias -= lr * sum(errors) / len(rows)
        weights = [w - lr * sum(e * row[j] for e, row in zip(errors, rows, strict=True)) / len(rows)
                   for j, w in enumerate(weights)]
    return Model(weights, bias)


def evaluate(model: Model, rows: list[list[float]], labels: list[int]) -> dict[str, float]:
    """A flat object of numbers: the input of mlops' promotion gates."""
    predicted = model.predict(rows)
    correct = sum(p == y for p, y in zip(predicted, labels, strict=True))
    eps = 1e-12
    loss = -sum(math.log(max(eps, model.probability(r) if y else 1.0 - model.probability(r)))
                for r, y in zip(rows, labels, strict=True)) / len(rows)
    return {"accuracy": round(correct / len(rows), 6), "log_loss": round(loss, 6)}


def train(samples: int, seed: int, epochs: int, lr: float) -> tuple[Model, dict[str, float]]:
    """Fit on 75% of the data, score on the rest."""
    rows, labels = dataset(samples, seed)
    cut = samples * 3 // 4
    model = fit(rows[:cut], labels[:cut], epochs, lr)
    return model, evaluate(model, rows[cut:], labels[cut:])


def save(model: Model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": "logistic-regression", **asdict(model)}) + "\n")


def load(path: Path) -> Model:
    """A model file, or a folder holding model.json or exactly one file (KServe's /mnt/models)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        named = [p for p in files if p.name == "model.json"]
        if len(named) != 1 and len(files) != 1:
            raise ValueError(f"{path}: expected model.json or exactly one file")
        path = (named or files)[0]
    data = json.loads(path.read_text())
    weights = [float(w) for w in data["weights"]]
    if len(weights) != FEATURES:
        raise ValueError(f"{path}: model has {len(weights)} weights, expected {FEATURES}")
    return Model(weights, float(data["bias"]))
