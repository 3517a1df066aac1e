import csv
import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from evaluate.cli import main
from evaluate.scoring import compute_metrics


def _write_csv(path, names, x, y):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "target"])
        for row, label in zip(x.tolist(), y.tolist(), strict=True):
            writer.writerow([*row, label])


@pytest.fixture
def artifacts(tmp_path):
    data = load_breast_cancer()
    x = StandardScaler().fit_transform(data.data)
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=0.25,
                                              random_state=0, stratify=data.target)
    test_csv, model_path = tmp_path / "test.csv", tmp_path / "model.joblib"
    _write_csv(test_csv, data.feature_names, x_te, y_te)
    joblib.dump(LogisticRegression(max_iter=500).fit(x_tr, y_tr), model_path)
    return test_csv, model_path


def test_writes_flat_metrics_and_kfp_metrics(artifacts, tmp_path, capsys):
    test_csv, model_path = artifacts
    out, kfp_out = tmp_path / "x" / "metrics.json", tmp_path / "y" / "kfp.json"

    assert main(["--test", str(test_csv), "--model", str(model_path),
                 "--metrics-out", str(out), "--kfp-metrics-out", str(kfp_out)]) == 0

    metrics = json.loads(out.read_text())
    assert sorted(metrics) == ["accuracy", "f1", "roc_auc"]
    assert all(isinstance(value, float) for value in metrics.values())
    assert metrics["accuracy"] > 0.9 and metrics["roc_auc"] > 0.95
    assert json.loads(kfp_out.read_text()) == metrics
    assert json.loads(capsys.readouterr().out) == metrics


def test_kfp_metrics_are_optional(artifacts, tmp_path):
    test_csv, model_path = artifacts

    main(["--test", str(test_csv), "--model", str(model_path),
          "--metrics-out", str(tmp_path / "m.json")])

    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "model.joblib", "test.csv"]


def test_metrics_match_hand_computed_values():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(x, [0, 1, 0, 1])

    metrics = compute_metrics(model, x, y)

    predicted = model.predict(x)
    assert metrics["accuracy"] == float(np.mean(predicted == y))


def test_model_without_predict_proba_uses_decision_function():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])

    metrics = compute_metrics(LinearSVC().fit(x, y), x, y)

    assert metrics == {"accuracy": 1.0, "f1": 1.0, "roc_auc": 1.0}


def test_unreadable_model_is_a_clean_error(artifacts, tmp_path, capsys):
    test_csv, _ = artifacts

    with pytest.raises(SystemExit) as exc:
        main(["--test", str(test_csv), "--model", str(tmp_path / "missing.joblib"),
              "--metrics-out", str(tmp_path / "m.json")])

    assert exc.value.code == 1
    assert "missing.joblib" in capsys.readouterr().err


def test_runs_as_module(artifacts, tmp_path):
    test_csv, model_path = artifacts
    result = subprocess.run(
        [sys.executable, "-m", "evaluate", "--test", str(test_csv), "--model",
         str(model_path), "--metrics-out", str(tmp_path / "m.json")],
        capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((tmp_path / "m.json").read_text())


def test_executor_input_puts_metrics_into_metrics_artifact_metadata(artifacts, tmp_path):
    test_csv, model_path = artifacts
    output_file = tmp_path / "evaluate" / "executor_output.json"
    spec = {"outputs": {"outputFile": str(output_file),
                        "parameters": {"metrics_json": {"outputFile": str(tmp_path / "m.json")}},
                        "artifacts": {"kfp_metrics": {"artifacts": [
                            {"name": "kfp_metrics", "uri": str(tmp_path / "k.json"),
                             "type": {"schemaTitle": "system.Metrics"}}]}}}}

    main(["--test", str(test_csv), "--model", str(model_path), "--metrics-out",
          str(tmp_path / "m.json"), "--kfp-metrics-out", str(tmp_path / "k.json"),
          "--executor-input", json.dumps(spec)])

    artifact = json.loads(output_file.read_text())["artifacts"]["kfp_metrics"]["artifacts"][0]
    assert artifact["uri"] == str(tmp_path / "k.json")
    assert artifact["metadata"] == json.loads((tmp_path / "m.json").read_text())
