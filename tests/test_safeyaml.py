"""safeyaml.dump takes libyaml's emitter only where it writes the pure-Python emitter's bytes.

Release records, overlays and golden files compare bytes written by PyYAML's
pure-Python dumper. Random documents (odd keys, control characters, astral
characters, strings past the 4096-byte line) must dump the same either way,
and the documents on which the two emitters do differ must go the slow way.
"""

from __future__ import annotations

import math
import random

import yaml

from mlops import release as rel
from mlops.adapters import safeyaml

CHARS = ([chr(c) for c in range(0, 0x250)] + list("ab: #-'\"\n\t{}[],&*!|>%@`?")
         + ["\u2028", "\u2029", "\ufeff", "\ufffe", "\x85", "\xa0", "中", "😀", "\U00010000"]
         + ["null", "yes", "No", "~", "0o7", "1e3", ".inf", "-.nan", "---", "..."])
SCALARS = [None, True, False, 0, -1, 10**20, 1.5, -0.0, math.inf, -math.inf, math.nan, 1e-300,
           0.1 + 0.2]


def pure(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096)


def random_text(rnd: random.Random) -> str:
    n = rnd.choice([0, 1, 3, 8, 40, 130, 390, 420, 5000])
    return "".join(rnd.choice(CHARS) for _ in range(n))


def random_doc(rnd: random.Random, depth: int = 0):
    pick = rnd.random()
    if depth > 2 or pick < 0.4:
        return random_text(rnd) if rnd.random() < 0.8 else rnd.choice(SCALARS)
    if pick < 0.6:
        return [random_doc(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    keys = [rnd.choice(["digest", "image", "c-001", "", "yes", random_text(rnd)[:70]])
            for _ in range(rnd.randint(0, 3))]
    return {k: random_doc(rnd, depth + 1) for k in keys}


def test_libyaml_is_taken_only_where_it_writes_the_same_bytes():
    rnd = random.Random(17)
    fast = 0
    for _ in range(2000):
        doc = {"apiVersion": "mlops.dev/v1", "x": random_doc(rnd)}
        assert safeyaml.dump(doc) == pure(doc), repr(doc)[:300]
        fast += safeyaml._same_from_libyaml(doc)
    assert fast > 500  # the check does not just send everything the slow way


def test_the_documents_the_emitters_differ_on_go_the_pure_python_way():
    differ = [{"": 1}, {"k" * 125: 1}, {"x\r\u01c9": 1}, {"k": "\xe9 b " * 2000}]
    for doc in differ:
        faster = yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False,
                           default_flow_style=False, width=4096)
        assert faster != pure(doc)  # still a difference worth the check
        assert not safeyaml._same_from_libyaml(doc)
        assert safeyaml.dump(doc) == pure(doc)


def test_a_release_record_of_a_thousand_images_takes_libyaml():
    images = {f"c{i:04d}": rel.Image(f"127.0.0.1:5000/ns/c{i:04d}", "sha256:" + f"{i:064x}")
              for i in range(1000)}
    record = rel.EnvRecord("dev", rel.Release(source_commit="a" * 40, images=images,
                                              metrics={"accuracy": 0.9}), "build",
                           gates=({"gate": "accuracy", "result": "pass", "detail": "ok"},))
    text = rel.render(record)
    assert text == rel.HEADER + pure(yaml.safe_load(text))
    doc = yaml.safe_load(text)
    assert safeyaml._same_from_libyaml(doc)
