import csv
import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from train.cli import main
from train.model import read_dataset


@pytest.fixture
def train_csv(tmp_path):
    data = load_breast_cancer()
    x = StandardScaler().fit_transform(data.data)
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*data.feature_names, "target"])
        for row, label in zip(x.tolist(), data.target.tolist(), strict=True):
            writer.writerow([*row, label])
    return path


def test_fits_and_saves_model_into_new_directory(train_csv, tmp_path):
    out = tmp_path / "out" / "model" / "model.joblib"

    assert main(["--train", str(train_csv), "--model-out", str(out),
                 "--c", "0.5", "--max-iter", "300", "--seed", "3"]) == 0

    model = joblib.load(out)
    assert isinstance(model, LogisticRegression)
    assert model.C == 0.5 and model.max_iter == 300 and model.random_state == 3
    assert model.n_features_in_ == 30
    x, y = read_dataset(train_csv)
    assert model.score(x, y) > 0.95


def test_target_column_may_be_anywhere(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("target,a,b\n1,0.5,2\n0,1.5,3\n")

    x, y = read_dataset(path)

    np.testing.assert_array_equal(x, [[0.5, 2.0], [1.5, 3.0]])
    np.testing.assert_array_equal(y, [1, 0])


def test_missing_target_column_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")

    with pytest.raises(SystemExit) as exc:
        main(["--train", str(path), "--model-out", str(tmp_path / "m.joblib")])

    assert exc.value.code == 1
    assert "no 'target' column" in capsys.readouterr().err


@pytest.mark.parametrize("flag,value", [("--c", "0"), ("--c", "-1"), ("--max-iter", "0")])
def test_rejects_non_positive_hyperparameters(train_csv, tmp_path, flag, value):
    with pytest.raises(SystemExit) as exc:
        main(["--train", str(train_csv), "--model-out", str(tmp_path / "m"), flag, value])
    assert exc.value.code == 2


def test_runs_as_module(train_csv, tmp_path):
    out = tmp_path / "m.joblib"
    result = subprocess.run(
        [sys.executable, "-m", "train", "--train", str(train_csv), "--model-out", str(out)],
        capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert "trained on 569 rows" in result.stdout


def test_executor_input_writes_kfp_executor_output(train_csv, tmp_path):
    model_path = tmp_path / "train" / "model"
    output_file = tmp_path / "train" / "executor_output.json"
    spec = {"outputs": {"outputFile": str(output_file), "artifacts": {"model": {"artifacts": [
        {"name": "model", "uri": str(model_path), "type": {"schemaTitle": "system.Model"},
         "metadata": {"framework": "sklearn"}}]}}}}

    main(["--train", str(train_csv), "--model-out", str(model_path),
          "--executor-input", json.dumps(spec)])

    assert json.loads(output_file.read_text()) == {"artifacts": {"model": {"artifacts": [
        {"name": "model", "uri": str(model_path), "metadata": {"framework": "sklearn"}}]}}}
