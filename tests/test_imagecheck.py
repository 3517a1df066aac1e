"""imagecheck: which registry lookups a build record may cause, and what is refused."""

from __future__ import annotations

import pytest

from mlops import imagecheck
from mlops.errors import ConfigError

REGISTRY = "registry.example:5000/team"
HASH = "ab" * 32


def entry(component, image=None, input_hash=HASH):
    return {"component": component, "image": image or f"{REGISTRY}/{component}",
            "digest": "sha256:" + "0" * 64, "input_hash": input_hash}


def test_only_this_projects_images_are_looked_up_ahead():
    entries = [
        entry("train"),
        entry("serve", image="evil.example/team/serve"),  # another registry
        entry("../up", image=f"{REGISTRY}/../up"),  # a path, not a component
        entry("eval", input_hash="../../_catalog"),  # would land in the URL
        entry("score", input_hash=None),
        {"component": "noimage", "input_hash": HASH},
        {"image": f"{REGISTRY}/x", "input_hash": HASH},
    ]
    assert imagecheck.lookups_ahead(REGISTRY, entries) == [
        (f"{REGISTRY}/train", "ih-" + HASH[:20])]


def test_an_input_hash_that_is_not_hex_is_refused_before_any_lookup():
    asked = []
    with pytest.raises(ConfigError, match="input_hash '../x' is not a sha256 in hex"):
        imagecheck.check_record_entries(REGISTRY, "build.json",
                                        {"a": entry("a"), "b": entry("b", input_hash="../x")},
                                        lambda image, tag: asked.append(tag))
    assert asked == []
