"""safeyaml's checked loads build what PyYAML's safe constructor builds, or fail as it does.

The loads walk the composed tree themselves for the plain nodes of overlays and
records (`safeyaml._plain_documents`) and leave everything else to PyYAML.
Generated documents, with the scalars YAML 1.1 resolves in surprising ways,
explicit tags, merge keys and complex keys, must give the same value (same
types, same key order) or the same error either way.
"""

from __future__ import annotations

import random

import pytest

from mlops.adapters import safeyaml
from mlops.errors import ConfigError

SCALARS = [
    "a", "c-001", "127.0.0.1:5000/ns/c@sha256:" + "0" * 64, "''", '""', "'7'", '"yes"',
    "~", "null", "Null", "", "true", "False", "yes", "No", "on", "OFF", "y", "n",
    "0", "-0", "+12", "017", "0o17", "0x1F", "0b101", "1_000", "1:20", "-1:20:30", "190:20:30",
    "1.5", "-.5", "1e3", "1.0e+3", "6.8523015e+5", "685.230_15e+03", "1:20.5", ".inf", "-.Inf",
    ".NaN", "2026-12-07", "2026-12-07T01:02:03Z", "12:30", "9" * 30,
    "!!str 12", "!!int '7'", "!!float 1", "!!bool yes", "!!null ''", "!!int abc",
    "!!bool maybe", "!!float x", "!!binary aGk=", "!!timestamp 2026-01-02",
    "!!timestamp nope", "!!str", "!mine x", "!!python/name:os.system ''",
    "[a, 1, yes]", "{a: 1, b: [x]}", "!!set {a, b}", "!!omap [{a: 1}]", "[]", "{}",
]
DISPLAY = "f.yaml"
KEYS = ["name", "digest", "1", "yes", "~", "0x10", "'q'", "<<", "=", "? [a, b]", "!!str 1",
        "!!int 2", "2026-01-01"]


def random_block(rnd: random.Random, indent: int = 0, depth: int = 0) -> list[str]:
    """Lines of a block mapping or sequence, nested up to three levels."""
    pad = " " * indent
    lines: list[str] = []
    if rnd.random() < 0.5:
        used: set[str] = set()
        for _ in range(rnd.randint(1, 4)):
            key = rnd.choice(KEYS)
            if key in used:  # duplicate keys are refused before construction
                continue
            used.add(key)
            lines += _entry(rnd, f"{pad}{key}:", indent, depth)
    else:
        for _ in range(rnd.randint(1, 4)):
            lines += _entry(rnd, f"{pad}-", indent, depth)
    return lines


def _entry(rnd: random.Random, head: str, indent: int, depth: int) -> list[str]:
    if depth < 3 and rnd.random() < 0.35:
        return [head] + random_block(rnd, indent + 2, depth + 1)
    if head.endswith(":") and head.strip() == "<<:" and rnd.random() < 0.7:
        return [f"{head} {{m: 1, n: [2]}}"]
    return [f"{head} {rnd.choice(SCALARS)}"]


def outcome(text: str) -> str:
    try:
        return "value " + repr(safeyaml.load(text, DISPLAY))  # repr: 1, 1.0 and True differ
    except ConfigError as exc:
        return "error " + exc.message


def pyyaml_outcome(text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(safeyaml, "_plain_documents", lambda nodes: None)
        return outcome(text)


def test_generated_documents_load_as_pyyaml_loads_them(monkeypatch):
    rnd = random.Random(7)
    walked = values = errors = 0
    for _ in range(3000):
        text = "\n".join(random_block(rnd)) + "\n"
        node = _composed(text)
        walked += node is not None and safeyaml._plain_documents([node]) is not None
        mine, theirs = outcome(text), pyyaml_outcome(text, monkeypatch)
        assert mine == theirs, text
        values += mine.startswith("value")
        errors += mine.startswith("error")
    # Both paths and both outcomes are exercised, or the comparison proves little.
    assert walked > 500 and values - walked > 300 and errors > 100, (walked, values, errors)


def _composed(text: str) -> safeyaml.Node | None:
    """The composed tree, or None where composing refuses the text (duplicate keys...)."""
    try:
        return safeyaml.compose(text, DISPLAY)
    except ConfigError:
        return None


def test_an_overlay_and_a_record_are_walked_not_dispatched():
    overlay = ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
               "resources:\n  - ../base\nimages:\n"
               + "".join(f"  - name: c{i}\n    newName: r:5000/ns/c{i}\n    digest: sha256:"
                         f"{i:064x}\n" for i in range(50)))
    record = "id: r-1\nmetrics:\n  accuracy: 0.9\n  n: 3\nhold: null\nok: true\ngates: []\n"
    for text in (overlay, record):
        node = safeyaml.compose(text, DISPLAY)
        walked = safeyaml._plain_documents([node])
        assert walked is not None
        assert walked == [safeyaml._construct_with(safeyaml._CheckedLoader, [node])[0]]


@pytest.mark.parametrize("text", [
    "a: !!int abc\n",         # the constructor's ValueError: PyYAML's path words it, with the line
    "a:\n  <<: {b: 1}\n",     # a merge key: PyYAML merges
    "? [a]\n: 1\n",           # a complex key: PyYAML refuses it (unhashable)
    "a: !!binary aGk=\n",     # bytes: not a plain tag
    "a: !!str [1]\n",         # a str tag on a sequence: PyYAML refuses it
    "a: !!null {}\n",         # a null tag on a mapping: PyYAML refuses it
    "=: 1\n",                 # the `=` value key: PyYAML turns it into a str key
])
def test_what_the_walk_leaves_to_pyyaml(text, monkeypatch):
    assert safeyaml._plain_documents([safeyaml.compose(text, DISPLAY)]) is None
    assert outcome(text) == pyyaml_outcome(text, monkeypatch)


def test_a_document_nested_past_the_walk_s_recursion_is_built_by_pyyaml():
    text = "".join(" " * i + "k:\n" for i in range(3000)) + " " * 3000 + "v\n"
    node = safeyaml.compose(text, DISPLAY)
    assert safeyaml._plain_documents([node]) is None  # RecursionError: left to PyYAML
    value = safeyaml.load(text, DISPLAY)
    depth = 0
    while isinstance(value, dict):
        depth, value = depth + 1, value["k"]
    assert (depth, value) == (3000, "v")
