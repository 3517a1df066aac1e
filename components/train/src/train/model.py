"""Reading the training data, fitting and saving the model (no argument parsing)."""
from __future__ import annotations

import csv
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

TARGET = "target"


def read_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV written by ``preprocess``: feature columns plus ``target``."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = np.array(list(reader), dtype=float)
    if TARGET not in header:
        raise ValueError(f"{path}: no {TARGET!r} column in header")
    column = header.index(TARGET)
    return np.delete(rows, column, axis=1), rows[:, column].astype(int)


def fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int,
        seed: int) -> LogisticRegression:
    model = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    return model.fit(x, y)


def save(model: LogisticRegression, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
