"""Model URIs a cluster can read (mlops/modeluri.py).

KServe's storage initializer fetches `storageUri` inside the cluster
(kserve/kserve python/storage/kserve_storage/kserve_storage.py, Storage.download;
pkg/controller/v1beta1/inferenceservice/utils/utils.go SupportedStorageURIPrefixList
for pvc://): a `file://` URI or a path from `mlops run` is on the machine that ran it.
"""

from __future__ import annotations

import pytest

from mlops import config as cfg
from mlops import modeluri
from mlops.errors import ConfigError

DEFAULT = modeluri.DEFAULT_SCHEMES


@pytest.mark.parametrize("uri", ["gs://b/m", "s3://b/m", "pvc://claim/m", "hf://org/model",
                                 "oci://r.example/models/m@sha256:" + "a" * 64,
                                 "https://models.example/m.tar.gz"])
def test_default_schemes_pass(uri):
    assert modeluri.problem(uri, DEFAULT) is None
    modeluri.check(uri, DEFAULT, "prod")


@pytest.mark.parametrize(("uri", "why"), [
    ("file:///work/.demo/run/model", "is a file on the machine that wrote it"),
    ("models/m1", "is a path on this machine"),
    ("/mnt/models/m1", "is a path on this machine"),
    ("http://models.example/m", "has scheme http://, which the environment does not allow"),
    ("S3://b/m", "has scheme S3://"),  # KServe matches "s3://" literally
    ("s3://", "names nothing after the scheme"),
])
def test_what_a_cluster_cannot_read_is_refused_in_one_line(uri, why):
    with pytest.raises(ConfigError) as exc:
        modeluri.check(uri, DEFAULT, "prod")
    message = str(exc.value)
    assert why in message and "\n" not in message
    assert "prod's InferenceService needs one of gs://, s3://, pvc://, oci://, hf://, https://" \
        in message


def test_a_configured_scheme_passes_and_replaces_the_default():
    assert modeluri.problem("file:///x", ("file",)) is None
    assert modeluri.problem("http://m/x", (*DEFAULT, "http")) is None
    assert modeluri.problem("s3://b/m", ("file",)) is not None


def _config(tmp_path, env_extra: str):
    (tmp_path / "mlops.yaml").write_text(
        "registry: r.example/ml\nenvironments:\n  - name: dev\n  - name: prod\n" + env_extra)
    return cfg.load_config(tmp_path, {})


def test_the_key_is_read_per_environment(tmp_path):
    config = _config(tmp_path, "    model_uri_schemes: [s3, 'file://', oci+native]\n")
    assert config.environment("prod").model_schemes == ("s3", "file", "oci+native")
    assert config.environment("dev").model_schemes == DEFAULT


@pytest.mark.parametrize(("value", "message"), [
    ("[]", "must be a non-empty list of URI schemes"),
    ("s3", "must be a non-empty list of URI schemes"),
    ("[S3]", "'S3' is not a URI scheme"),
    ("[3s]", "'3s' is not a URI scheme"),
])
def test_bad_scheme_lists_are_config_errors(tmp_path, value, message):
    with pytest.raises(ConfigError, match=message) as exc:
        _config(tmp_path, f"    model_uri_schemes: {value}\n")
    assert "mlops.yaml:5" in str(exc.value)
