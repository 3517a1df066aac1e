"""benchmarks/summary.py and the README plumbing of benchmarks/common.py.

The benchmarks report rather than assert, so what must not break is the
bookkeeping: a missed target stays visible in the summary, context rows are
never counted as met, and the hand-written text outside the markers survives
every rewrite.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import `common` as a sibling
    try:
        import common
        import summary

        yield common, summary
    finally:
        sys.path.remove(str(BENCHMARKS))
        # Their names are generic: leave no `common` or `summary` to later imports.
        sys.modules.pop("common", None)
        sys.modules.pop("summary", None)


SECTION = """<!-- plan:start -->
### No-op plan

- Date: 2026-11-23 07:56 UTC
- Reproduce: `python3 benchmarks/plan.py` (or `make bench`)

| ratio | measured | target | result |
|---|---|---|---|
| plan / floor | 56.3× | ≤ 3× (DESIGN.md) | NOT met |
| rebuild / plan | 129× | ≥ 100× (DESIGN.md) | met |
| plan / in-process | 6.1× | — | met |
<!-- plan:end -->
"""


def test_a_context_row_is_info_never_met(bench):
    common, _ = bench
    assert common.target_row("a / b", 2.0, "—", True)[-1] == "info"
    assert common.target_row("a / b", 2.0, "≤ 3×", True)[-1] == "met"
    assert common.target_row("a / b", 4.0, "≤ 3×", False)[-1] == "NOT met"


def test_the_summary_keeps_every_miss_and_names_the_command(bench):
    _, summary = bench
    rows = summary.gather(SECTION)
    assert [(r.what, r.result) for r in rows] == [
        ("plan / floor", "NOT met"), ("rebuild / plan", "met"), ("plan / in-process", "info")]
    assert {r.reproduce for r in rows} == {"python3 benchmarks/plan.py"}
    text = summary.render(rows)
    assert "| **NOT met** |" in text
    assert "1 of 3 rows miss their target" in text


def test_rewriting_a_section_leaves_the_hand_written_text(bench, tmp_path):
    common, _ = bench
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nby hand, before\n\n" + SECTION + "\nby hand, after\n")
    common.write_section("plan", "new body", readme)
    common.write_section("compile", "appended", readme)
    text = readme.read_text()
    assert "by hand, before" in text and "by hand, after" in text
    assert "<!-- plan:start -->\nnew body\n<!-- plan:end -->" in text
    assert "56.3×" not in text
    assert text.rstrip().endswith("<!-- compile:start -->\nappended\n<!-- compile:end -->")
