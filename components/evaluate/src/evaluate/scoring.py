"""Reading the test data, scoring the model and writing metrics (no argument parsing)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

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


def positive_scores(model, x: np.ndarray) -> np.ndarray:
    """Scores for the positive class, for ROC AUC."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba(x)[:, 1]
    return model.decision_function(x)


def compute_metrics(model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    predicted = model.predict(x)
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, positive_scores(model, x))),
    }


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
