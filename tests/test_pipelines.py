import pytest

from mlops import pipelines as pl
from mlops.errors import ConfigError

SPEC = {"pipelineInfo": {"name": "t"}, "sdkVersion": "kfp-2.16.1", "deploymentSpec": {
    "executors": {"exec-a": {"container": {"image": "r/a@sha256:" + "a" * 64}},
                  "exec-b": {"container": {"image": "r/b:1.0"}}}}}


def docs(spec=SPEC):
    return [{"kind": "Pipeline", "metadata": {"name": "t"}},
            {"kind": "PipelineVersion", "metadata": {"name": "x"}, "spec": {"pipelineSpec": spec}}]


def test_spec_hash_covers_the_whole_spec_sdk_version_included():
    """KFP's webhook refuses any in-place spec change but displayName and tags
    (kubeflow/pipelines backend/src/apiserver/webhook/pipelineversion_webhook.go,
    ValidateUpdate), so every other byte of the spec must move the name."""
    version_spec = docs()[1]["spec"]
    base = pl.spec_hash(version_spec)
    changed = [{**version_spec, "pipelineSpec": {**SPEC, "sdkVersion": "kfp-2.16.0"}},
               {**version_spec, "pipelineSpec": {**SPEC, "pipelineInfo": {"name": "u"}}},
               {**version_spec, "description": "other"},
               {**version_spec, "platformSpec": {"platforms": {}}}]
    assert len({base, *(pl.spec_hash(c) for c in changed)}) == 1 + len(changed)
    assert pl.spec_hash(dict(reversed(list(version_spec.items())))) == base  # canonical JSON


def test_version_name_is_content_addressed():
    d = docs()
    name = pl.name_version(d, "training")
    assert name == "training-" + pl.spec_hash(d[1]["spec"])[:10]
    assert d[1]["metadata"]["name"] == name
    other = docs({**SPEC, "sdkVersion": "kfp-2.16.0"})
    assert pl.name_version(other, "training") != name


def test_tag_refused_where_digests_are_required():
    with pytest.raises(ConfigError, match="executor exec-b uses image 'r/b:1.0', not pinned"):
        pl.check_images(docs(), "p.py", "prod", require_digest=True)
    pl.check_images(docs(), "p.py", "dev", require_digest=False)


@pytest.mark.parametrize(("stem", "ok"), [("training", True), ("my_pipe", True),
                                          ("Training", False), ("a" * 43, False), ("-x", False)])
def test_resource_names(stem, ok):
    if ok:
        assert pl.resource_name(stem, "f") == stem.replace("_", "-")
    else:
        with pytest.raises(ConfigError):
            pl.resource_name(stem, "f")


def test_images_from_build_record():
    record = {"builds": [{"component": "a", "image": "r/a", "tags": ["1.0"], "digest": None},
                         {"component": "b", "image": "r/b", "digest": "sha256:" + "b" * 64}]}
    assert pl.images_from_build(record, "b.json") == {"a": "r/a:1.0", "b": "r/b@sha256:" + "b" * 64}
    for bad in ({}, {"builds": [{"image": "x"}]}, {"builds": [{"component": "a", "digest": "md5:1"}]}):
        with pytest.raises(ConfigError):
            pl.images_from_build(bad, "b.json")


@pytest.mark.parametrize(("entries", "problem"), [
    ([{"component": "a", "digest": "sha256:" + "a" * 64}], "is not an image repository"),
    ([{"component": "a", "image": 5, "digest": "sha256:" + "a" * 64}], "is not an image"),
    ([{"component": "a", "image": "r/UPPER CASE\nx", "tags": ["1"]}], "is not an image"),
    ([{"component": "a", "image": "r/a"}], "names neither a digest nor a tag"),
    ([{"component": "a", "image": "r/a", "tags": ["bad tag\n"]}], "bad tag"),
    ([{"component": "a", "image": "r/a", "tags": ["1"]},
      {"component": "a", "image": "r/b", "tags": ["2"]}], "component 'a' is built twice"),
])
def test_a_build_entry_that_pins_no_image_is_refused(entries, problem):
    """Found by a bad-input hunt: each of these compiled a container with no image, or a
    broken one, and exited 0."""
    with pytest.raises(ConfigError, match=problem):
        pl.images_from_build({"builds": entries}, "b.json")
