"""Malformed and hostile YAML in every file mlops reads: config, specs, overlays, records.

Each file gets the same abuse where it applies: a syntax error, a duplicate
key, a billion-laughs bomb of anchors and aliases (refused before anything
expands it), a wrong type, an unknown key, a non-mapping top level, an empty
file and binary garbage.
"""

from __future__ import annotations

from tests.bad_inputs.corpus import (
    BOMB,
    Case,
    appended,
    build_record,
    check,
    committed,
    nothing,
    params,
    pushed,
    replaced,
)

KUST = "environments/dev/kustomization.yaml"
SPEC = "components/train/component.yaml"
BINARY = bytes(range(256)) * 4  # NUL, invalid UTF-8, everything


def _compile_setup(files, push: bool = False):
    """Break `files`, then write a build record for `mlops compile --build`."""
    def setup(world):
        (world.push if push else world.commit)(files)
        build_record(world)
    return setup


def _indented_bomb(key: str) -> str:
    return f"{key}:\n" + "".join(f"  {line}\n" for line in BOMB.splitlines())


CONFIG_CASES = [
    Case("mlops-yaml-syntax-error", "bare", committed({"mlops.yaml": "registry: [a\nbuild: {}\n"}),
         ["promote", "--to", "dev", "--build", "{base}/build.json"], 1,
         "mlops.yaml:2: invalid YAML"),
    Case("mlops-yaml-duplicate-key", "bare",
         appended("mlops.yaml", "registry: 127.0.0.1:1/elsewhere\n"),
         ["history"], 1, "invalid YAML: found duplicate key \"registry\""),
    Case("mlops-yaml-nested-8000-deep", "bare",  # was a minute, then a RecursionError
         appended("mlops.yaml", "x-deep: " + "[" * 8000 + "]" * 8000 + "\n"),
         ["history"], 1, "nested deeper than the limit of 64"),
    Case("component-yaml-nested-deep", "bare",
         appended("components/train/component.yaml", "x: " + "{a: " * 100 + "1" + "}" * 100
                  + "\n"),
         ["build", "--dry-run"], 1,
         "components/train/component.yaml:3: nested deeper than the limit of 64"),
    Case("mlops-yaml-billion-laughs", "bare", appended("mlops.yaml", _indented_bomb("x-bomb")),
         ["build", "--dry-run"], 1, "YAML anchors and aliases are not allowed", process=True),
    Case("mlops-yaml-environments-not-a-list", "bare",
         lambda w: w.commit({"mlops.yaml": f"registry: {w.ns}\nenvironments: {{dev: {{}}}}\n"}),
         ["compile", "--env", "dev"], 1, "mlops.yaml:2: environments must be a list"),
    Case("mlops-yaml-unknown-key", "bare", replaced("mlops.yaml", "approvals:", "aprovals:"),
         ["rollback", "--env", "dev"], 1,
         "unknown key 'aprovals' in mlops.yaml; did you mean 'approvals'?"),
    Case("mlops-yaml-top-level-list", "bare", committed({"mlops.yaml": "- registry: a:1/b\n"}),
         ["approve", "--env", "prod", "--release", "r-0123456789ab"], 1,
         "mlops.yaml must be a mapping"),
    Case("mlops-yaml-empty", "bare", committed({"mlops.yaml": ""}),
         ["status", "--env", "dev"], 1, "mlops.yaml:1: file is empty"),
    Case("mlops-yaml-binary-garbage", "bare", committed({"mlops.yaml": BINARY}),
         ["run", "training", "--env", "dev", "--local"], 1, "mlops.yaml:1: not UTF-8 text"),
    Case("mlops-yaml-threshold-not-a-number", "bare",
         replaced("mlops.yaml", "threshold: 0.9", "threshold: high"),
         ["promote", "--to", "staging", "--from", "dev"], 1, "threshold must be a finite number"),
    Case("mlops-yaml-threshold-nan", "bare",
         replaced("mlops.yaml", "threshold: 0.9", "threshold: .nan"),
         ["promote", "--to", "staging", "--from", "dev"], 1, "threshold must be a finite number"),
    Case("mlops-yaml-canary-steps-decrease", "bare",
         replaced("mlops.yaml", "    approval: true\n",
                  "    approval: true\n    canary:\n      steps: [50, 10]\n"
                  "      analysis: {metrics: [{name: e, query: up, max: 1}]}\n"),
         ["rollout", "start", "--env", "prod"], 1, "steps"),
    Case("mlops-yaml-canary-query-unknown-variable", "bare",
         replaced("mlops.yaml", "    approval: true\n",
                  "    approval: true\n    canary:\n      steps: [10]\n      analysis:\n"
                  "        metrics: [{name: e, query: 'up{pod=\"{{ pod }}\"}', max: 1}]\n"),
         ["rollout", "analyze", "--env", "prod"], 1, "pod"),
]

SPEC_CASES = [
    Case("component-yaml-syntax-error", "bare", committed({SPEC: "name: train\nversion: [1\n"}),
         ["build", "--dry-run"], 1, f"{SPEC}:3: invalid YAML"),
    Case("component-yaml-duplicate-key", "bare",
         committed({SPEC: "name: train\nversion: 0.1.0\nname: other\n"}),
         ["build", "--dry-run"], 1, f"{SPEC}:3: invalid YAML: found duplicate key \"name\""),
    Case("component-yaml-billion-laughs", "bare",
         committed({SPEC: "name: train\nversion: 0.1.0\n" + _indented_bomb("description")}),
         ["build", "--dry-run"], 1, "YAML anchors and aliases are not allowed", process=True),
    Case("component-yaml-test-wrong-type", "bare",
         appended(SPEC, "test: {run: pytest}\n"),
         ["build", "--dry-run"], 1, "test must be a list of arguments or a string"),
    Case("component-yaml-unknown-key", "bare", appended(SPEC, "vresion: 2.0.0\n"),
         ["build", "--dry-run"], 1, "unknown key 'vresion' in component.yaml"),
    Case("component-yaml-top-level-string", "bare", committed({SPEC: "just a string\n"}),
         ["build", "--dry-run"], 1, "component.yaml must be a mapping"),
    Case("component-yaml-empty", "bare", committed({SPEC: ""}),
         ["build", "--dry-run"], 1, "component.yaml must be a mapping"),
    Case("component-yaml-binary-garbage", "bare", committed({SPEC: BINARY}),
         ["build", "--dry-run"], 1, f"{SPEC}:1: not UTF-8 text"),
]

COMPILE = ["compile", "--env", "dev", "--build", "{base}/build.json"]

OVERLAY_CASES = [
    Case("kustomization-syntax-error", "bare",
         _compile_setup({KUST: "resources: [../base\n"}), COMPILE, 1,
         f"{KUST}:2: invalid YAML"),
    Case("kustomization-duplicate-key", "bare",
         _compile_setup({KUST: "resources:\n  - ../base\nresources:\n  - ../base\n"}), COMPILE,
         1, f"{KUST}:3: invalid YAML: found duplicate key \"resources\""),
    Case("kustomization-billion-laughs", "bare",
         _compile_setup({KUST: _indented_bomb("x-anchors") + "resources:\n  - ../base\n  - *i\n"}),
         COMPILE, 1, "YAML anchors and aliases are not allowed", process=True),
    Case("kustomization-top-level-list", "bare", _compile_setup({KUST: "- ../base\n"}), COMPILE,
         1, f"{KUST}:1: a kustomization must be a mapping"),
    Case("kustomization-images-not-a-list", "bare",
         committed({KUST: "resources:\n  - ../base\nimages: {train: x}\n"}),
         ["compile", "--env", "dev"], 1, "images must be a list"),
    Case("kustomization-binary-garbage", "bare", _compile_setup({KUST: BINARY}), COMPILE, 1,
         f"{KUST}:1: not UTF-8 text"),
    Case("kustomization-missing", "bare", _compile_setup({KUST: None}), COMPILE, 1,
         f"{KUST}: not found (environment dev has no overlay)"),
    # Valid YAML and valid Kustomize, but an in-place line edit would break it (issue 16)
    Case("kustomization-images-in-flow-style", "staged",
         appended("environments/prod/kustomization.yaml",
                  "images: [{name: serve, newName: example.org/serve, newTag: '1'}]\n",
                  push=True),
         ["promote", "--to", "prod", "--from", "staging"], 1,
         "environments/prod/kustomization.yaml:8: images is written in flow style"),
    Case("kustomization-image-entry-in-flow-style", "staged",
         appended("environments/prod/kustomization.yaml",
                  "images:\n  - {name: serve, newName: example.org/serve}\n", push=True),
         ["promote", "--to", "prod", "--from", "staging"], 1,
         "environments/prod/kustomization.yaml:9: images is written in flow style"),
]

RELEASE = "environments/dev/release.yaml"
FROM_DEV = ["promote", "--to", "staging", "--from", "dev"]

RECORD_CASES = [
    Case("release-yaml-syntax-error", "bare", pushed({RELEASE: "kind: Release\nid: [x\n"}),
         FROM_DEV, 1, f"{RELEASE}:3: invalid YAML"),
    Case("release-yaml-duplicate-key", "bare",
         pushed({RELEASE: "kind: Release\nhold: {reason: x}\nhold: null\n"}),
         FROM_DEV, 1, f"{RELEASE}:3: invalid YAML: found duplicate key \"hold\""),
    Case("release-yaml-billion-laughs", "bare",
         pushed({RELEASE: "kind: Release\n" + _indented_bomb("x-anchors")
                 + "source_commit: *i\n"}),
         FROM_DEV, 1, "YAML anchors and aliases are not allowed", process=True),
    Case("release-yaml-not-a-record", "bare", pushed({RELEASE: "- kind\n- Release\n"}),
         FROM_DEV, 1, f"{RELEASE}: not an mlops release record"),
    Case("release-yaml-empty", "bare", pushed({RELEASE: ""}),
         FROM_DEV, 1, f"{RELEASE}: not an mlops release record"),
    Case("release-yaml-binary-garbage", "bare", pushed({RELEASE: BINARY}),
         FROM_DEV, 1, f"{RELEASE}:1: not UTF-8 text"),
    Case("release-yaml-images-wrong-type", "bare",
         pushed({RELEASE: "kind: Release\nid: r-0\nimages: [train]\n"}),
         FROM_DEV, 1, f"{RELEASE}: malformed release record"),
    Case("build-record-that-is-yaml", "bare", nothing,
         ["promote", "--to", "dev", "--build", "{clone}/mlops.yaml"], 1,
         "not a readable JSON build record"),
]


@params(CONFIG_CASES + SPEC_CASES + OVERLAY_CASES + RECORD_CASES)
def test_bad_yaml(world, case, capsys):
    check(world, case, capsys)
