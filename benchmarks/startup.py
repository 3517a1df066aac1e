#!/usr/bin/env python3
"""Start-up: `mlops --help` against a bare `python3 -c pass` (issue 17).

Target: `mlops --help` within 1.5x of `python3 -c pass`, both fresh processes.
Building the parser imports argparse and the parser modules only: each
subcommand's parser is built when the command line names it, and its command
module (with the SDKs behind it) when it runs. `mlops build --help` (one
subcommand's parser) is reported beside it.

Measured: the four commands (the three, and `python3 -S -c pass`: the
interpreter without `site`) in turns, median of N rounds after one warm-up
round. Then one `python3 -X importtime` of `mlops --help`: the modules it loads
beyond a bare interpreter's, the slowest first.

Usage: python3 benchmarks/startup.py [--repeat N] [--no-readme]
It rewrites its own section of benchmarks/README.md and exits 0 whether or not
the target is met; 1 means it could not measure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import common
from common import BenchError, Timing, run

SECTION = "startup"
TARGET = 1.5  # mlops --help within 1.5x of python3 -c pass
BUSY = 0.25  # CPU use by others above which the figures are flagged as noisy
TOP = 8


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=common.at_least(1), default=21, metavar="N",
                   help="timed rounds, after one warm-up round (default 21)")
    p.add_argument("--no-readme", action="store_true",
                   help="print only; leave benchmarks/README.md alone")
    return p.parse_args(argv)


def measure_all(cli: str, cwd: Path, n: int) -> list[Timing]:
    def fresh(argv: list[str]):
        return lambda: run(argv, cwd=cwd, capture=False)

    print(f"measuring: median of {n} rounds after one warm-up round, in turns", flush=True)
    return common.measure_turns([
        ("python3 -c pass", fresh([sys.executable, "-c", "pass"]), "bare interpreter start-up"),
        ("mlops --help", fresh([cli, "--help"]), "the console script"),
        ("mlops build --help", fresh([cli, "build", "--help"]), "one subcommand's parser"),
        ("python3 -S -c pass", fresh([sys.executable, "-S", "-c", "pass"]),
         "the interpreter without `site` (no site-packages, no .pth files)"),
    ], n)


def import_profile(cwd: Path) -> str:
    """The modules `mlops --help` loads beyond `python3 -c pass`, by cumulative import time."""
    def loaded(argv: list[str]) -> dict[str, tuple[int, int]]:
        proc = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd,
                                     capture_output=True, text=True, check=False)
        found = {}
        for line in proc.stderr.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if len(parts) == 3 and parts[0].strip().isdigit():
                found[parts[2].strip()] = (int(parts[0]), int(parts[1]))
        return found

    bare = loaded(["-c", "pass"])
    extra = {m: t for m, t in loaded(["-m", "mlops", "--help"]).items() if m not in bare}
    rows = sorted(extra.items(), key=lambda kv: -kv[1][1])[:TOP]
    own = sum(t[0] for t in extra.values()) / 1e3
    table = common.text_table(["module", "self µs", "cumulative µs"],
                              [[m, str(s), str(c)] for m, (s, c) in rows])
    return (f"{len(extra)} modules beyond a bare interpreter's, {own:.1f} ms of import time "
            f"under -X importtime (which inflates it); the slowest:\n\n```\n{table}\n```")


def site_profile(cwd: Path) -> str:
    """What `site` imports at every interpreter's start on this machine, by cumulative time:
    the .pth files of site-packages (an editable install's finder, a CA bundle's hook)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], cwd=cwd,
                          capture_output=True, text=True, check=False)
    children: list[tuple[str, int]] = []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        if depth == 0 and name.strip() == "site":
            break
        if depth == 0:
            children = []
        elif depth == 1:
            children.append((name.strip(), int(parts[1])))
    rows = sorted(children, key=lambda kv: -kv[1])[:TOP]
    table = common.text_table(["module site imports", "cumulative µs"],
                              [[m, str(c)] for m, c in rows])
    return f"```\n{table}\n```"


def ratios(res: list[Timing]) -> list[list[str]]:
    bare, help_, build_help, no_site = (t.median for t in res)
    return [
        common.target_row("mlops --help / python3 -c pass", help_ / bare,
                          f"≤ {TARGET:g}× (issue 17)", help_ / bare <= TARGET),
        common.target_row("mlops build --help / python3 -c pass", build_help / bare, "—", True),
        common.target_row("python3 -S -c pass / python3 -c pass", no_site / bare,
                          "— (the interpreter's share of its own start-up)", True),
    ]


def _busy(busy: float | None) -> str:
    if busy is None:
        return "CPU use by other work unknown"
    noisy = " (busy: the figures are noisy)" if busy > BUSY else ""
    return f"CPUs {busy:.0%} busy with other work just before measuring{noisy}"


def report(res: list[Timing], args: argparse.Namespace, cli: str, profile: str, site: str,
           revision: str, busy: float | None) -> str:
    rows = ratios(res)
    timings = common.timing_rows(res)
    print(f"\n{common.text_table(common.TIMING_HEADERS, timings)}\n")
    print(common.text_table(common.TARGET_HEADERS, rows))
    print(f"\n{profile}\n\n{site}")
    m = common.machine()
    return f"""### Start-up (`mlops --help`)

Target (issue 17): `mlops --help` within {TARGET:g}× of `python3 -c pass`.

- Date: {m['date']}
- Code: `mlops/` as of commit {common.revision_since(revision)}
- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']}; {_busy(busy)}
- Reproduce: `{common.command_line(__file__)}` (or `make bench`)
- Method: the four commands in turns, fresh processes in an empty temp dir,
  median of {args.repeat} rounds after one warm-up round. `mlops` is
  `{Path(cli).name}`, the console script of `{Path(sys.executable).name}`, its
  bytecode written first. Both sides pay the same interpreter start-up,
  including whatever `site` loads on this machine.

{common.md_table(common.TIMING_HEADERS, timings)}

{common.md_table(common.TARGET_HEADERS, rows)}

What `mlops --help` imports (one `python3 -X importtime -m mlops --help`):
{profile}

What every interpreter's `site` imports here before any program runs (one
`python3 -X importtime -c pass`; `python3 -S` skips it, and with it
site-packages): this is most of `python3 -c pass`, and it is this machine's,
not mlops': a wheel install has no editable-install finder.

{site}
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    revision = common.project_revision()
    try:
        cli = common.mlops_cli()
        common.byte_compile()
        busy = common.cpu_busy()
        with tempfile.TemporaryDirectory(prefix="mlops-bench-startup-") as tmp:
            res = measure_all(cli, Path(tmp), args.repeat)
            profile = import_profile(Path(tmp))
            site = site_profile(Path(tmp))
    except BenchError as exc:
        print(f"startup: {exc}", file=sys.stderr)
        return 1
    section = report(res, args, cli, profile, site, revision, busy)
    if not args.no_readme:
        common.write_section(SECTION, section)
        print(f"\nwrote the {SECTION} section of {common.README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
