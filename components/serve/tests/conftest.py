import joblib
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="session")
def dataset():
    data = load_breast_cancer()
    return StandardScaler().fit_transform(data.data), data.target


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, dataset):
    """A storageUri-style directory with a small model trained here."""
    x, y = dataset
    directory = tmp_path_factory.mktemp("models")
    joblib.dump(LogisticRegression(max_iter=300).fit(x, y), directory / "model.joblib")
    return directory
