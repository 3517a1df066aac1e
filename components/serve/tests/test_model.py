import asyncio

import numpy as np
import pytest
from kserve import InferInput, InferRequest, InferResponse
from kserve.errors import InvalidInput, ModelMissingError

from serve.metrics import PREDICTIONS
from serve.model import CancerModel


@pytest.fixture
def model(model_dir):
    model = CancerModel("cancer", model_dir)
    assert model.load() is True
    return model


def _v2_request(rows, datatype="FP32"):
    tensor = InferInput(name="input-0", shape=list(rows.shape), datatype=datatype)
    tensor.set_data_from_numpy(rows, binary_data=False)
    return InferRequest(model_name="cancer", infer_inputs=[tensor])


def test_load_marks_ready_and_reads_model_joblib(model):
    assert model.ready
    assert model.n_features == 30


def test_v1_predict_returns_labels_for_each_instance(model, dataset):
    x, y = dataset

    response = model.predict({"instances": x[:20].tolist()})

    assert response == {"predictions": model.estimator.predict(x[:20]).tolist()}
    assert np.mean(np.array(response["predictions"]) == y[:20]) >= 0.9
    assert all(type(label) is int for label in response["predictions"])


def test_v2_predict_returns_int64_output_tensor(model, dataset):
    x, _ = dataset
    expected = model.estimator.predict(x[:5])

    response = model.predict(_v2_request(x[:5].astype(np.float32)))

    assert isinstance(response, InferResponse)
    output = response.outputs[0]
    assert output.name == "output-0" and output.datatype == "INT64" and output.shape == [5]
    np.testing.assert_array_equal(output.as_numpy(), expected)


def test_kserve_call_path_runs_predict_for_both_protocols(model, dataset):
    x, _ = dataset
    v1, _ = asyncio.run(model({"instances": x[:3].tolist()}))
    v2, _ = asyncio.run(model(_v2_request(x[:3].astype(np.float32))))

    assert v1["predictions"] == v2.outputs[0].as_numpy().tolist()


def test_counts_predicted_classes(model, dataset):
    x, _ = dataset
    before = PREDICTIONS.labels(model_name="cancer", predicted_class="1")._value.get()

    predictions = model.predict({"instances": x[:50].tolist()})["predictions"]

    after = PREDICTIONS.labels(model_name="cancer", predicted_class="1")._value.get()
    assert after - before == sum(predictions)


@pytest.mark.parametrize("payload", [
    {"instances": [[1.0, 2.0]]},
    {"instances": []},
    {"instances": [[0.0] * 30, [0.0] * 29]},
    {"instances": [["a"] * 30]},
    {"rows": [[0.0] * 30]},
])
def test_rejects_malformed_v1_input(model, payload):
    with pytest.raises(InvalidInput):
        model.predict(payload)


def test_rejects_v2_tensor_of_wrong_width(model):
    with pytest.raises(InvalidInput, match=r"\[N, 30\]"):
        model.predict(_v2_request(np.zeros((2, 4), dtype=np.float32)))


def test_model_dir_may_be_the_model_file(model_dir):
    model = CancerModel("cancer", model_dir / "model.joblib")
    assert model.load()


def test_single_file_of_any_name_is_the_model(model_dir, tmp_path):
    (tmp_path / "model").write_bytes((model_dir / "model.joblib").read_bytes())
    (tmp_path / ".hidden").write_text("ignored")

    assert CancerModel("cancer", tmp_path).load()


@pytest.mark.parametrize("files", [[], ["a.joblib", "b.joblib"]])
def test_missing_or_ambiguous_model_raises_model_missing(tmp_path, files):
    for name in files:
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(ModelMissingError):
        CancerModel("cancer", tmp_path).load()


def test_missing_directory_raises_model_missing(tmp_path):
    with pytest.raises(ModelMissingError):
        CancerModel("cancer", tmp_path / "nope").load()


def test_v2_metadata_types(model):
    assert model.get_input_types() == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 30]}]
    assert model.get_output_types()[0]["datatype"] == "INT64"
