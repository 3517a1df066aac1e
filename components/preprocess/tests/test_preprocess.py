import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from preprocess.cli import main
from preprocess.data import TARGET, load_dataset, split_and_scale


def _read(path):
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], np.array(rows[1:], dtype=float)


def test_writes_scaled_stratified_split_into_new_directories(tmp_path):
    train, test = tmp_path / "a" / "train.csv", tmp_path / "b" / "c" / "test.csv"

    assert main(["--test-size", "0.25", "--seed", "42",
                 "--train-out", str(train), "--test-out", str(test)]) == 0

    header, train_rows = _read(train)
    assert header[-1] == TARGET and len(header) == 31
    _, test_rows = _read(test)
    assert len(train_rows) + len(test_rows) == 569
    assert len(test_rows) == 143
    np.testing.assert_allclose(train_rows[:, :-1].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(train_rows[:, :-1].std(axis=0), 1.0, atol=1e-9)
    assert set(np.unique(train_rows[:, -1])) == {0.0, 1.0}
    assert abs(train_rows[:, -1].mean() - test_rows[:, -1].mean()) < 0.02


def test_csv_round_trips_full_precision(tmp_path):
    x, y, names = load_dataset()
    split = split_and_scale(x, y, names, 0.25, 7)
    main(["--seed", "7", "--train-out", str(tmp_path / "tr.csv"),
          "--test-out", str(tmp_path / "te.csv")])

    _, rows = _read(tmp_path / "te.csv")

    np.testing.assert_array_equal(rows[:, :-1], split.x_test)
    np.testing.assert_array_equal(rows[:, -1], split.y_test)


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    outputs = []
    for run, seed in enumerate(["1", "1", "2"]):
        out = tmp_path / f"test{run}.csv"
        main(["--seed", seed, "--train-out", str(tmp_path / f"t{run}.csv"),
              "--test-out", str(out)])
        outputs.append(out.read_bytes())

    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


@pytest.mark.parametrize("size", ["0", "1", "1.5", "-0.1"])
def test_rejects_test_size_outside_unit_interval(tmp_path, size, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--test-size", size, "--train-out", str(tmp_path / "a"),
              "--test-out", str(tmp_path / "b")])
    assert exc.value.code == 2
    assert "--test-size" in capsys.readouterr().err


def test_runs_as_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "preprocess", "--train-out", str(tmp_path / "tr.csv"),
         "--test-out", str(tmp_path / "te.csv")],
        capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert "426 training rows" in result.stdout


def test_executor_input_writes_kfp_executor_output(tmp_path):
    train, test = tmp_path / "preprocess" / "train", tmp_path / "preprocess" / "test"
    output_file = tmp_path / "preprocess" / "executor_output.json"
    spec = {"outputs": {"outputFile": str(output_file), "artifacts": {
        name: {"artifacts": [{"name": name, "uri": str(path),
                              "type": {"schemaTitle": "system.Dataset"}, "metadata": {}}]}
        for name, path in (("train", train), ("test", test))}}}

    main(["--train-out", str(train), "--test-out", str(test),
          "--executor-input", json.dumps(spec)])

    written = json.loads(output_file.read_text())["artifacts"]
    assert written["train"]["artifacts"] == [{"name": "train", "uri": str(train), "metadata": {}}]
    assert written["test"]["artifacts"][0]["uri"] == str(test)


def test_rejects_executor_input_without_output_file(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--train-out", str(tmp_path / "a"), "--test-out", str(tmp_path / "b"),
              "--executor-input", '{"outputs": {}}'])
    assert exc.value.code == 2
