"""A release's digest: computed once, from the release's own copy of its content."""

from __future__ import annotations

import copy
import json
import pickle

from mlops import release as rel
from mlops.records import asdict, replace


def image(n: int) -> rel.Image:
    return rel.Image(f"127.0.0.1:5000/ns/c{n}", "sha256:" + f"{n:064x}")


def test_the_digest_does_not_follow_the_dicts_the_release_was_made_from():
    images, metrics = {"a": image(1)}, {"accuracy": 0.9}
    release = rel.Release(source_commit="a" * 40, images=images, metrics=metrics)
    before = release.digest
    images["b"] = image(2)
    metrics["accuracy"] = 0.1
    assert release.digest == before
    assert release == rel.Release(source_commit="a" * 40, images={"a": image(1)},
                                  metrics={"accuracy": 0.9})


def test_a_changed_release_has_the_digest_of_its_content():
    release = rel.Release(source_commit="a" * 40, images={"a": image(1)})
    first = release.digest
    changed = replace(release, metrics={"accuracy": 0.9})
    assert changed.digest != first
    assert changed.digest == rel.Release(source_commit="a" * 40, images={"a": image(1)},
                                         metrics={"accuracy": 0.9}).digest
    assert release.digest == first and release.id == "r-" + first[7:19]


def test_a_release_pickles_copies_and_dumps_as_before():
    release = rel.Release(source_commit="a" * 40, images={"a": image(1)},
                          pipelines={"p": "v1"}, metrics={"accuracy": 0.9})
    digest = release.digest
    for other in (pickle.loads(pickle.dumps(release)), copy.deepcopy(release)):
        assert other == release and other.digest == digest
    assert json.loads(json.dumps(asdict(release)))["pipelines"] == {"p": "v1"}
