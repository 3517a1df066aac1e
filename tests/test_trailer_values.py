"""trailers.one_line: a trailer value on one line, whatever characters it holds."""

from __future__ import annotations

import random

from mlops.trailers import one_line

CHARS = list("ab =-:") + ["\n", "\r", "\t", "\x0b", "\x0c", "\x1b", "\x85", "\xa0", "\u2028",
                          "\u3000", "\u200b", "\ufeff", "é", "中", "😀"]


def reference(value: str) -> str:
    """The definition: every character that does not print is a space, runs of space are one."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def test_one_line_is_its_definition_on_generated_values():
    rnd = random.Random(3)
    values = ["".join(rnd.choice(CHARS) for _ in range(rnd.randint(0, 12))) for _ in range(5000)]
    for value in values:
        assert one_line(value) == reference(value), repr(value)
    assert sum(not v.isprintable() for v in values) > 1000  # the slow path is exercised


def test_a_query_written_as_a_yaml_block_becomes_one_line():
    assert one_line("sum(rate(x[5m]))\n  / sum(rate(y[5m]))\x1b[2J") == \
        "sum(rate(x[5m])) / sum(rate(y[5m])) [2J"
