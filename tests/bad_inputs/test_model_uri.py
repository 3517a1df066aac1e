"""Model URIs no cluster can read, refused before anything is written (exit 1, one line).

The release's model URI becomes the InferenceService's storageUri, fetched by
KServe's storage initializer in the cluster (kserve/kserve
python/storage/kserve_storage/kserve_storage.py, Storage.download): `file://`
and plain paths there are the *pod's* files, not those of the machine that ran
`mlops run`. Allowed schemes: environments[].model_uri_schemes in mlops.yaml.
"""

from __future__ import annotations

import yaml

from mlops import release as rel
from tests.bad_inputs.conftest import CANARY, mlops
from tests.bad_inputs.corpus import Case, build_record, check, params

PROMOTE_DEV = ["promote", "--to", "dev", "--build", "{base}/build.json", "--model-uri"]
STAGING = "environments/staging/release.yaml"


def _record(world):
    build_record(world)


def _file_model_in_staging_and_prod_canary(world):
    """staging's record carries a file:// model (its id recomputed from the content, as
    a promotion under an older mlops would have written it), and prod is a canary."""
    record = rel.parse(world.text(STAGING), STAGING)
    release = rel.Release(record.release.source_commit, record.release.images,
                          record.release.pipelines, "file:///home/dev/run/model",
                          record.release.metrics)
    new = rel.EnvRecord("staging", release, record.promoted_from, record.gates)
    config = world.text("mlops.yaml").replace("    approval: true\n",
                                              "    approval: true\n" + CANARY)
    world.push({STAGING: rel.render(new), "mlops.yaml": config})


CASES = [
    Case("model-uri-file", "bare", _record, [*PROMOTE_DEV, "file:///tmp/run/model"], 1,
         "model URI 'file:///tmp/run/model' is a file on the machine that wrote it"),
    Case("model-uri-relative-path", "bare", _record, [*PROMOTE_DEV, "run/model"], 1,
         "model URI 'run/model' is a path on this machine"),
    Case("model-uri-scheme-not-allowed", "bare", _record, [*PROMOTE_DEV, "http://m.test/x"], 1,
         "has scheme http://, which the environment does not allow"),
    Case("rollout-start-file-model", "staged", _file_model_in_staging_and_prod_canary,
         ["rollout", "start", "--env", "prod"], 1,
         "model URI 'file:///home/dev/run/model' is a file on the machine that wrote it; no pod "
         "in the cluster can read it; prod's InferenceService needs one of"),
]


@params(CASES)
def test_refused(world, case, capsys):
    check(world, case, capsys)


def _promote_dev(staged, built, uri):
    mlops(staged.clone, *PROMOTE_DEV[:4], str(built[1]), "--model-uri", uri)
    staged.git("pull", "-q", "--ff-only", "origin", "main")
    return yaml.safe_load(staged.text("environments/dev/release.yaml"))["model_uri"]


def test_an_allowed_scheme_passes(staged, built):
    assert _promote_dev(staged, built, "s3://models/cancer-v3") == "s3://models/cancer-v3"


def test_a_configured_scheme_passes(staged, built):
    staged.edit("mlops.yaml", "  - name: dev\n",
                "  - name: dev\n    model_uri_schemes: [s3, http]\n")
    assert _promote_dev(staged, built, "http://models.test/m") == "http://models.test/m"
