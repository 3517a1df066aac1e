"""Loading, splitting, scaling and writing the data set (no argument parsing)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

TARGET = "target"


@dataclass(frozen=True)
class Split:
    feature_names: list[str]
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def load_dataset() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return features, labels and feature names; the data ships with scikit-learn."""
    bunch = load_breast_cancer()
    return bunch.data, bunch.target, [str(name) for name in bunch.feature_names]


def split_and_scale(x: np.ndarray, y: np.ndarray, names: list[str],
                    test_size: float, seed: int) -> Split:
    """Stratified split; the scaler is fitted on the training rows only."""
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(x_train)
    return Split(names, scaler.transform(x_train), scaler.transform(x_test),
                 y_train, y_test)


def write_csv(path: Path, names: list[str], x: np.ndarray, y: np.ndarray) -> None:
    """Write features plus a ``target`` column; floats keep full precision."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, TARGET])
        for row, label in zip(x.tolist(), y.tolist(), strict=True):
            writer.writerow([*row, int(label)])
