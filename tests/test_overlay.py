import pytest

from mlops.errors import ConfigError
from mlops.overlay import add_resource, image_pins, parse, set_images

ODD = """\
# Comments, odd spacing and quoting must survive byte for byte.
apiVersion: kustomize.config.k8s.io/v1beta1
kind:   Kustomization   # odd spacing
namePrefix: "prod-"
resources:
    -   ../base     # four-space indent, wide dash
    - 'quoted.yaml'
# a comment that belongs to images
images:
  - name: train
    newName: registry.example.com/mlops/train
    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
"""


def test_append_keeps_every_other_byte():
    out = add_resource(ODD, "pipelines/training.yaml", "k.yaml")
    added = [line for line in out.splitlines() if line not in ODD.splitlines()]
    assert added == ["    - pipelines/training.yaml"]
    assert out.replace("    - pipelines/training.yaml\n", "", 1) == ODD


def test_existing_resource_is_a_no_op():
    assert add_resource(ODD, "quoted.yaml", "k.yaml") == ODD


@pytest.mark.parametrize(("text", "expected"), [
    ("resources: []\n", "resources:\n  - p.yaml\n"),
    ("resources: [a.yaml]\nkind: K\n", "resources:\n  - a.yaml\n  - p.yaml\nkind: K\n"),
    ("kind: K", "kind: K\nresources:\n  - p.yaml\n"),
    ("resources:\n- a.yaml\n\nimages: []\n", "resources:\n- a.yaml\n- p.yaml\n\nimages: []\n"),
])
def test_append_in_every_layout(text, expected):
    assert add_resource(text, "p.yaml", "k.yaml") == expected


def test_image_pins():
    pins = image_pins(parse(ODD, "k.yaml"), "k.yaml")
    assert pins["train"].new_name == "registry.example.com/mlops/train"
    assert pins["train"].digest.startswith("sha256:0000")


def test_bad_kustomizations_are_located():
    with pytest.raises(ConfigError, match="k.yaml:1: resources must be a list"):
        add_resource("resources: x\n", "p.yaml", "k.yaml")
    with pytest.raises(ConfigError, match="every images entry needs a name"):
        image_pins(parse("images:\n  - newName: x\n", "k.yaml"), "k.yaml")


D = "sha256:" + "a" * 64


def test_set_images_replaces_in_place_and_appends_missing():
    out = set_images(ODD, {"train": ("r/train", D), "serve": ("r/serve", D)}, "k.yaml")
    changed = [line for line in out.splitlines() if line not in ODD.splitlines()]
    assert changed == ["    newName: r/train", f"    digest: {D}",
                       "  - name: serve", "    newName: r/serve", f"    digest: {D}"]
    assert "# a comment that belongs to images" in out and 'namePrefix: "prod-"' in out


@pytest.mark.parametrize(("text", "expected"), [
    # a tag becomes a digest; the quotes and the comment on newName stay
    ('images:\n  - name: t\n    newTag: "v1"\n    newName: \'o/t\' # c\n',
     f"images:\n  - name: t\n    digest: {D}\n    newName: 'r/t' # c\n"),
    # newTag on the dash line turns into the digest line
    ("images:\n  - newTag: v1  # c\n    name: t\n    newName: o/t\n",
     f"images:\n  - digest: {D}  # c\n    name: t\n    newName: r/t\n"),
    ("images: []\nresources: []\n", f"images:\n  - name: t\n    newName: r/t\n    digest: {D}\nresources: []\n"),
    ("kind: K\n", f"kind: K\nimages:\n  - name: t\n    newName: r/t\n    digest: {D}\n"),
])
def test_set_images_layouts(text, expected):
    assert set_images(text, {"t": ("r/t", D)}, "k.yaml") == expected


def test_set_images_is_idempotent():
    once = set_images(ODD, {"train": ("r/train", D)}, "k.yaml")
    assert set_images(once, {"train": ("r/train", D)}, "k.yaml") == once
