"""`jsontext.dumps` prints what `json.dumps(document, indent=2)` prints, byte for byte,
and raises what it raises."""

from __future__ import annotations

import collections
import json
import random

import pytest

from mlops import jsontext

DOCUMENTS = [
    {}, [], (), "", 0, -0.0, 1e300, 5e-324, 10**40, True, False, None,
    {"a": [1, 2.5, {"b": None, "c": True, "d": False}], "e": [], "f": {}, "g": ()},
    {"ünï": "line\nbreak \"quoted\" \\ tab\t \u2028 \x00 \U0001f600", "": ""},
    [[[[]]], [{}], [[1]], {"x": {"y": {"z": [None]}}}],
    {"entries": [{"commit": "a" * 40, "digests": {"c0": "sha256:" + "0" * 64}, "n": 3}] * 3},
]

# Not plain: json.dumps decides (keys that are not strings, subclasses, floats that
# are not finite) and prints them its own way.
ODD = [
    {1: "one", 2.5: "x", False: "f", None: "n"},
    collections.OrderedDict([("b", 1), ("a", 2)]),
    {"nan": float("nan"), "inf": [float("inf"), float("-inf")]},
    {"nested": {"deep": [collections.Counter("aab")]}},
]


@pytest.mark.parametrize("document", DOCUMENTS + ODD, ids=repr)
def test_prints_what_the_standard_library_prints(document):
    assert jsontext.dumps(document) == json.dumps(document, indent=2)


def random_document(rng: random.Random, depth: int = 0):
    scalars = [lambda: rng.choice(["", "a", "é", "\n", "\"", "\\", "x" * 50]),
               lambda: rng.randint(-10**20, 10**20), lambda: rng.uniform(-1e9, 1e9),
               lambda: rng.choice([True, False, None])]
    if depth > 4 or rng.random() < 0.4:
        return rng.choice(scalars)()
    if rng.random() < 0.5:
        return [random_document(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["k", "ключ", "a b", str(i)]) + str(i): random_document(rng, depth + 1)
            for i in range(rng.randint(0, 4))}


def test_random_documents_print_the_same():
    rng = random.Random(17)
    for _ in range(500):
        document = random_document(rng)
        assert jsontext.dumps(document) == json.dumps(document, indent=2)


def test_what_json_refuses_it_refuses_the_same_way():
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsontext.dumps({"a": [object()]})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps({"loop": loop})
