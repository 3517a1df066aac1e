"""The KServe model: loads ``model.joblib`` and answers v1 and v2 predictions."""
from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from kserve import InferRequest, InferResponse, Model
from kserve.errors import InvalidInput, ModelMissingError
from kserve.utils.utils import get_predict_input, get_predict_response

from serve.metrics import PREDICTIONS

MODEL_FILENAME = "model.joblib"


def resolve_model_path(model_dir: str | Path) -> Path:
    """``model_dir`` is a storageUri-style directory holding ``model.joblib``,
    or holding a single file (a KFP ``Model`` artifact is a file named
    ``model``), or the model file itself."""
    path = Path(model_dir)
    if path.is_file():
        return path
    if (path / MODEL_FILENAME).is_file():
        return path / MODEL_FILENAME
    files = [f for f in path.iterdir() if f.is_file() and not f.name.startswith(".")] \
        if path.is_dir() else []
    if len(files) == 1:
        return files[0]
    raise ModelMissingError(str(path / MODEL_FILENAME))


class CancerModel(Model):
    """Predicts 0 (malignant) or 1 (benign) for rows of 30 standardised features."""

    def __init__(self, name: str, model_dir: str | Path):
        super().__init__(name)
        self.model_dir = model_dir
        self.estimator = None

    def load(self) -> bool:
        self.estimator = joblib.load(resolve_model_path(self.model_dir))
        self.ready = True
        return self.ready

    @property
    def n_features(self) -> int:
        return int(self.estimator.n_features_in_)

    def get_input_types(self):
        return [{"name": "input-0", "datatype": "FP32", "shape": [-1, self.n_features]}]

    def get_output_types(self):
        return [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]

    def predict(self, payload: dict | InferRequest, headers: dict | None = None,
                response_headers: dict | None = None) -> dict | InferResponse:
        rows = self._rows(payload)
        predictions = self.estimator.predict(rows)
        for label, count in zip(*np.unique(predictions, return_counts=True), strict=True):
            PREDICTIONS.labels(model_name=self.name, predicted_class=str(label)).inc(int(count))
        return get_predict_response(payload, predictions, self.name)

    def _rows(self, payload: dict | InferRequest) -> np.ndarray:
        if isinstance(payload, dict) and not ("instances" in payload or "inputs" in payload):
            raise InvalidInput('expected "instances" (v1) or "inputs" in the request body')
        try:
            rows = np.asarray(get_predict_input(payload), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"instances must be rows of numbers: {exc}") from exc
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != self.n_features:
            raise InvalidInput(f"expected a non-empty [N, {self.n_features}] array of "
                               f"features, got shape {list(rows.shape)}")
        return rows
