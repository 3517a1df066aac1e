#!/usr/bin/env python3
"""The one table of every target, gathered from the sections the benchmarks wrote.

Each benchmark rewrites its own section of benchmarks/README.md with a ratio
table (`| ratio | measured | target | result |`, or `| what | ...` for counts)
and a `- Reproduce:` line. This reads them back and rewrites the `summary`
section, so the summary can never disagree with the figures below it. It
measures nothing; `make bench` runs it last.

Usage: python3 benchmarks/summary.py [--no-readme]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

import common

NAME = "summary"
_SECTION = re.compile(r"<!-- (?P<name>[\w-]+):start -->\n(?P<body>.*?)\n<!-- (?P=name):end -->",
                      re.DOTALL)
_REPRODUCE = re.compile(r"^- Reproduce: `(?P<cmd>[^`]+)`", re.MULTILINE)
_DATE = re.compile(r"^- Date: (?P<date>.+)$", re.MULTILINE)
_TITLE = re.compile(r"^### (?P<title>.+)$", re.MULTILINE)
RATIO_HEADERS = (("ratio", "measured", "target", "result"),
                 ("what", "measured", "target", "result"))


@dataclass(frozen=True)
class Row:
    benchmark: str
    what: str
    measured: str
    target: str
    result: str
    date: str
    reproduce: str


def split_row(line: str) -> list[str]:
    """The cells of one Markdown table row, with `\\|` kept as a literal bar."""
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def target_tables(body: str) -> list[list[list[str]]]:
    """Every table in `body` whose header is one of RATIO_HEADERS, as rows of cells."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in body.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = split_row(line)
        if current is None:
            current = [] if tuple(cells) in RATIO_HEADERS else None
            if current is not None:
                tables.append(current)
        elif not set(line) <= set("|-: "):
            current.append(cells)
    return tables


def section_rows(name: str, body: str) -> list[Row]:
    title = _TITLE.search(body)
    date = _DATE.search(body)
    cmd = _REPRODUCE.search(body)
    rows = []
    for table in target_tables(body):
        for what, measured, target, result in (r[:4] for r in table if len(r) >= 4):
            if target.startswith("—") or target == "reported":
                result = "info"  # context for the targets, not a target of its own
            rows.append(Row(title.group("title") if title else name, what, measured, target,
                            result, date.group("date") if date else "?",
                            cmd.group("cmd") if cmd else "?"))
    return rows


def gather(text: str) -> list[Row]:
    return [row for m in _SECTION.finditer(text) if m.group("name") != NAME
            for row in section_rows(m.group("name"), m.group("body"))]


def render(rows: list[Row]) -> str:
    missed = [r for r in rows if r.result.startswith("NOT")]
    table = common.md_table(
        ("benchmark", "what", "measured", "target", "result", "reproduce"),
        [(r.benchmark, r.what, r.measured, r.target, f"**{r.result}**" if r in missed
          else r.result, f"`{r.reproduce}`") for r in rows])
    verdict = (f"{len(missed)} of {len(rows)} rows miss their target; the sections below "
               "say where the time goes." if missed else f"All {len(rows)} rows meet their target.")
    return "\n".join([
        "### Summary",
        "",
        "Every target row of the sections below, gathered by `benchmarks/summary.py` "
        "(run last by `make bench`). Each figure is a median ratio; each section gives "
        "its date, machine, method and spread.",
        "",
        table,
        "",
        verdict,
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-readme", action="store_true", help="print only")
    args = p.parse_args(argv)
    rows = gather(common.README.read_text(encoding="utf-8"))
    if not rows:
        print("summary: no target tables found in benchmarks/README.md", file=sys.stderr)
        return 1
    body = render(rows)
    print(body)
    if not args.no_readme:
        common.write_section(NAME, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
