"""mlops.isvc.patch_ops: the release id in the predictor's template, applied by real kustomize.

Every release must be a Knative revision of its own (isvc.RELEASE_ENV says why,
citing KServe's PropagateStatus), so the patch sets MLOPS_RELEASE on the
predictor container without touching the base's other variables.
"""

from __future__ import annotations

import copy

import yaml

from mlops import isvc
from mlops.adapters import kustomize
from tests.conftest import REPO_ROOT
from tests.support import crds

BASE = yaml.safe_load((REPO_ROOT / "environments/base/inferenceservice.yaml").read_text())


def _rendered(tmp_path, base: dict, ops: list[dict]) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "isvc.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / isvc.PATCH_FILE).write_text(isvc.render_patch(ops))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["isvc.yaml"],
        "patches": [{"path": isvc.PATCH_FILE, "target": isvc.patch_target(base)}]}))
    rendered = next(o for o in kustomize.render(tmp_path) if o["kind"] == isvc.KIND)
    crds.validate(rendered)
    return rendered


def _env(rendered: dict) -> list[dict]:
    return rendered["spec"]["predictor"]["containers"][0]["env"]


def test_the_release_id_is_appended_beside_the_model_uri(tmp_path):
    ops = isvc.patch_ops(BASE, "pvc://m/v2", 10, "r-0123456789ab")
    rendered = _rendered(tmp_path, BASE, ops)
    assert _env(rendered) == [{"name": "STORAGE_URI", "value": "pvc://m/v2"},
                              {"name": "MLOPS_RELEASE", "value": "r-0123456789ab"}]
    assert rendered["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_a_base_that_sets_the_variable_has_it_replaced_under_a_guard(tmp_path):
    base = copy.deepcopy(BASE)
    _env(base).insert(0, {"name": "MLOPS_RELEASE", "value": "unset"})
    ops = isvc.patch_ops(base, None, None, "r-0123456789ab")
    assert {"op": "test", "path": "/spec/predictor/containers/0/env/0/name",
            "value": "MLOPS_RELEASE"} in ops
    assert _env(_rendered(tmp_path, base, ops))[0] == {"name": "MLOPS_RELEASE",
                                                       "value": "r-0123456789ab"}


def test_two_releases_of_one_model_render_different_templates(tmp_path):
    one = _rendered(tmp_path / "a", BASE,
                    isvc.patch_ops(BASE, "pvc://m/v1", None, "r-aaaaaaaaaaaa"))
    two = _rendered(tmp_path / "b", BASE,
                    isvc.patch_ops(BASE, "pvc://m/v1", 10, "r-bbbbbbbbbbbb"))
    assert one["spec"]["predictor"]["containers"] != two["spec"]["predictor"]["containers"]


def test_no_release_id_leaves_the_template_alone():
    assert isvc.patch_ops(BASE, None, None) == [{"op": "test", "path": "/kind",
                                                 "value": isvc.KIND}]


def test_a_container_without_env_gets_a_list_of_its_own(tmp_path):
    bare = copy.deepcopy(BASE)
    del bare["spec"]["predictor"]["containers"][0]["env"]
    rendered = _rendered(tmp_path, bare, isvc.patch_ops(bare, None, 10, "r-0123456789ab"))
    assert _env(rendered) == [{"name": "MLOPS_RELEASE", "value": "r-0123456789ab"}]
    assert isvc.release_mark(rendered) == "r-0123456789ab"


def test_a_predictor_without_containers_carries_it_as_an_annotation(tmp_path):
    model = copy.deepcopy(BASE)
    model["spec"]["predictor"] = {"model": {"modelFormat": {"name": "sklearn"},
                                            "storageUri": "pvc://m/v1"}}
    first = _rendered(tmp_path / "a", model, isvc.patch_ops(model, None, 10, "r-aaaaaaaaaaaa"))
    assert first["spec"]["predictor"]["annotations"] == {"mlops.dev/release": "r-aaaaaaaaaaaa"}
    model["spec"]["predictor"]["annotations"] = {"team": "ml"}
    second = _rendered(tmp_path / "b", model, isvc.patch_ops(model, None, 10, "r-bbbbbbbbbbbb"))
    assert second["spec"]["predictor"]["annotations"] == {"team": "ml",
                                                          "mlops.dev/release": "r-bbbbbbbbbbbb"}
    assert isvc.release_mark(second) == "r-bbbbbbbbbbbb"
