"""`tracking:` in mlops.yaml (MLflow): its keys, $MLFLOW_TRACKING_URI over `uri`, and one
located line for each bad value."""

from __future__ import annotations

import pytest

from mlops.config import Tracking, load_config
from mlops.errors import ConfigError

BASE = "registry: 127.0.0.1:5000/ns\n"


def load(tmp_path, text: str, environ: dict | None = None):
    (tmp_path / "mlops.yaml").write_text(BASE + text)
    return load_config(tmp_path, environ=environ or {})


def test_off_without_a_uri(tmp_path):
    assert load(tmp_path, "").tracking == Tracking()
    assert not load(tmp_path, "tracking:\n  model: cancer\n").tracking.enabled


def test_keys_and_defaults(tmp_path):
    tracking = load(tmp_path, "tracking:\n  uri: http://mlflow:5000/\n  model: cancer\n").tracking
    assert tracking == Tracking(uri="http://mlflow:5000", model="cancer")
    assert tracking.enabled
    assert tracking.experiment_for("training") == "training"
    assert tracking.model_for("training") == "cancer"
    assert Tracking(uri="http://m").model_for("training") == "training"


def test_the_environment_variable_overrides_the_file(tmp_path):
    tracking = load(tmp_path, "tracking:\n  uri: http://mlflow:5000\n",
                    {"MLFLOW_TRACKING_URI": "https://other:443"}).tracking
    assert tracking.uri == "https://other:443"
    assert load(tmp_path, "", {"MLFLOW_TRACKING_URI": "http://m:5000"}).tracking.enabled
    for uri in ("sqlite:///tmp/mlflow.db", "databricks", "https://u@m/path"):
        assert load(tmp_path, "", {"MLFLOW_TRACKING_URI": uri}).tracking.uri == uri


@pytest.mark.parametrize(("text", "environ", "expected"), [
    ("tracking:\n  uri: mlflow:5000\n", {},
     "mlops.yaml:3: uri must be an MLflow tracking URI like http://mlflow:5000, got 'mlflow:5000'"),
    ("tracking:\n  uri: http://a b\n", {}, "uri must be an MLflow tracking URI"),
    ("tracking:\n  uri: http://u:pw@m:5000\n  model: a/b\n", {},
     "mlops.yaml:4: model may not contain '/' or ':', got 'a/b'"),
    ("tracking:\n  model: ''\n", {}, "mlops.yaml:3: model must be a non-empty string"),
    ("tracking:\n  experiment: 3\n", {}, "mlops.yaml:3: experiment must be a non-empty string"),
    ("tracking:\n  url: http://m\n", {},
     "mlops.yaml:3: unknown key 'url' in tracking; did you mean 'uri'?"),
    ("tracking: http://m\n", {}, "tracking must be a mapping"),
    ("", {"MLFLOW_TRACKING_URI": "u:secret@m:5000"},
     "$MLFLOW_TRACKING_URI must be an MLflow tracking URI like http://mlflow:5000, got '***@m:5000'"),
])
def test_bad_values_are_one_located_line(tmp_path, text, environ, expected):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text, environ)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert "secret" not in str(err.value) and "pw@" not in str(err.value)
