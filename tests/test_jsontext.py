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


# Lists of four or more items are written together (scalars by the C encoder,
# records key by key): the same text, whatever the items.
class Flag(int):
    pass


class Text(str):
    pass


RECORD_LISTS = [
    [{"a": 1, "b": "x"}] * 5,
    [{"%s": "%d", "100%": "%%", 'q"uo\\te': "ü", "\u2028": None}] * 4,
    [{"k": i, "nested": {"c0": "x", "c1": [1, 2, 3, 4]}, "e": {}, "l": []} for i in range(6)],
    [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2}],  # order
    [{"a": 1}, {"a": 1}, {"a": 1}, {"a": 1, "b": 2}],  # keys differ
    [{}, {}, {}, {}],
    [{"a": {}}, {"a": {}}, {"a": {"b": 1}}, {"a": {"b": 1}}],
    [1, 2.5, "s", None, True, False, 10**30, -0.0],
    [float("nan"), float("inf"), float("-inf"), 1.0],
    [Flag(1), 2, 3, 4],
    [Text("a"), "b", "c", "d"],
    [True, 1, 1.0, "1"],
    [[1, 2, 3, 4]] * 4,
    [{"a": Flag(1)}, {"a": 2}, {"a": 3}, {"a": 4}],
    [{"a": float("nan")}, {"a": 2}, {"a": 3}, {"a": 4}],
    [collections.OrderedDict(a=1)] * 4,
    [{1: "one"}, {1: "one"}, {1: "one"}, {1: "one"}],
    [{True: "t"}, {1: "t"}, {1.0: "t"}, {1: "t"}],
]


@pytest.mark.parametrize("items", RECORD_LISTS, ids=repr)
def test_lists_written_together_print_the_same(items):
    for document in (items, {"entries": items}, [[items]]):
        assert jsontext.dumps(document) == json.dumps(document, indent=2)


@pytest.mark.parametrize("items", RECORD_LISTS, ids=repr)
def test_without_the_c_encoder_lists_print_the_same(items, monkeypatch):
    monkeypatch.setattr(jsontext, "_LINES", None)  # an interpreter without json's _json
    for document in (items, {"entries": items}, ["a", 1, 2.5, None, True, "b"]):
        assert jsontext.dumps(document) == json.dumps(document, indent=2)


def random_records(rng: random.Random) -> list:
    keys = rng.sample(["a", "b", "%s", "ключ", "\n", "x y"], rng.randint(0, 4))
    return [{key: random_document(rng, 3) if rng.random() < 0.3 else rng.choice(
        ["v", "%", 7, None, 2.5, True]) for key in keys} for _ in range(rng.randint(4, 9))]


def test_random_lists_of_records_print_the_same():
    rng = random.Random(7)
    for _ in range(300):
        document = {"env": None, "entries": random_records(rng)}
        assert jsontext.dumps(document) == json.dumps(document, indent=2)


def test_a_list_holding_itself_among_records_is_refused_the_same_way():
    loop: list = []
    loop.extend({"a": loop} for _ in range(4))
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps(loop)


# A command may write a list's items as they come (`items`, a batch at a time), then
# hand the list's text (`list_of`) to `dumps` with the document.
def written_ahead(document: dict, key: str, cuts: list[int]) -> str:
    values, pieces, start = document[key], [], 0
    for cut in [*cuts, len(document[key])]:
        pieces += jsontext.items(values[start:cut], 1)
        start = cut
    return jsontext.dumps(document, {key: jsontext.list_of(pieces, 1)})


@pytest.mark.parametrize("items", [[], *RECORD_LISTS, *DOCUMENTS, *ODD], ids=repr)
def test_a_list_written_ahead_prints_the_same(items):
    document = {"env": None, "entries": list(items) if isinstance(items, list) else [items]}
    expected = json.dumps(document, indent=2)
    for cuts in ([], [1], [2, 3]):
        assert written_ahead(document, "entries", cuts) == expected


def test_random_lists_written_ahead_in_batches_print_the_same():
    rng = random.Random(5)
    for i in range(300):
        entries = random_records(rng) if i % 2 else [random_document(rng) for _ in range(6)]
        document = {"first": random_document(rng), "entries": entries, "last": 1}
        cuts = sorted(rng.sample(range(len(entries) + 1), 2))
        assert written_ahead(document, "entries", cuts) == json.dumps(document, indent=2)


def test_a_document_written_ahead_but_not_plain_is_printed_by_json():
    document = {1: "a number key", "entries": [1, 2]}
    text = jsontext.dumps(document, {"entries": jsontext.list_of(jsontext.items([1, 2], 1), 1)})
    assert text == json.dumps(document, indent=2)
