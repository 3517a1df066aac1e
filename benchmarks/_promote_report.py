"""The promotion benchmark's report: target rows, CPU share of other work, the section.

Used by benchmarks/promote.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import common
from _promote_cpu import CPU_HEADERS, Cpu, cpu_rows
from _promote_fixture import ENV
from _promote_race import RACERS, Round, race_rows
from common import Timing, fmt_ratio, fmt_seconds

FLOOR_TARGET = 2.0  # promote within 2x of the floor (the old target: now context)
PEER_TARGET = 1.0  # DESIGN.md: no slower than the clone-edit-commit-push script
BUSY = 0.25  # CPU use by others above which the figures are flagged as noisy


def ratio_rows(res: dict[str, Timing], pins: int, large: int) -> list[list[str]]:
    cli, inproc = res["cli"].median, res["inproc"].median
    floor_cli, floor_in = res["floor_cli"].median, res["floor_inproc"].median
    rows = [peer_row(f"promote / clone-edit-push script ({pins} pins)", cli, res["peer"])]
    if "large_cli" in res:
        rows.append(peer_row(f"promote / clone-edit-push script ({large} pins)",
                             res["large_cli"].median, res["large_peer"]))
    rows += verifying_rows(pins, cli, res["peer"], res["verifying"])
    if "large_cli" in res:
        rows += verifying_rows(large, res["large_cli"].median, res["large_peer"],
                               res["large_verifying"])
    return rows + [
        ["promote / floor (fresh processes)", fmt_ratio(cli / floor_cli), "—", "info"],
        ["promote / floor (in-process)", fmt_ratio(inproc / floor_in), "—", "info"],
        ["promote (fresh process) / floor (in-process)", fmt_ratio(cli / floor_in), "—", "info"],
    ]


def verifying_rows(pins: int, promote: float, peer: Timing, verifying: Timing) -> list[list[str]]:
    """What checking every digest costs any tool, and what mlops adds beyond that."""
    return [
        [f"verifying script / clone-edit-push script ({pins} pins)",
         fmt_ratio(verifying.median / peer.median),
         "— (the checks the target keeps, at their cheapest)", "info"],
        [f"promote / verifying script ({pins} pins)", fmt_ratio(promote / verifying.median),
         "— (mlops' own share)", "info"],
    ]


def peer_row(what: str, promote: float, peer: Timing) -> list[str]:
    ratio = promote / peer.median
    return common.target_row(what, ratio, f"≤ {PEER_TARGET:g}× (DESIGN.md)",
                             ratio <= PEER_TARGET)


class OtherWork:
    """The share of all CPUs that work other than this benchmark used over a window.

    /proc/stat's busy time, less our own CPU time (this process, its waited-for
    children: mlops, git, racers) and the registry's. Linux only; None elsewhere.
    """

    def __init__(self, registry_pid: int | None) -> None:
        self.registry_pid = registry_pid
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start: tuple[int, int, float] | None = None

    def _ours(self) -> float:
        t = os.times()
        seconds = t.user + t.system + t.children_user + t.children_system
        if self.registry_pid:
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{self.registry_pid}/stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                seconds += (int(fields[11]) + int(fields[12])) / self.hz  # utime, stime
        return seconds

    def begin(self) -> None:
        try:
            total, idle = common._cpu_times()
        except (OSError, ValueError, IndexError):
            return
        self.start = (total, idle, self._ours())

    def share(self) -> float | None:
        if self.start is None:
            return None
        try:
            total, idle = common._cpu_times()
        except (OSError, ValueError, IndexError):
            return None
        total0, idle0, ours0 = self.start
        all_seconds = (total - total0) / self.hz
        busy = all_seconds - (idle - idle0) / self.hz
        if all_seconds <= 0:
            return None
        return max(busy - (self._ours() - ours0), 0.0) / all_seconds


def busy_note(before: float | None, during: float | None) -> str:
    if before is None and during is None:
        return "CPU use by other work unknown"
    parts = []
    if before is not None:
        parts.append(f"{before:.0%} just before measuring")
    if during is not None:
        parts.append(f"{during:.0%} on average while measuring")
    worst = max(v for v in (before, during) if v is not None)
    noisy = " (busy: the figures are noisy)" if worst > BUSY else ""
    return f"CPUs busy with other work: {', '.join(parts)}{noisy}"


def report(script: str, res: dict[str, Timing], rounds: list[Round], race: Timing,
           args: argparse.Namespace, setup_seconds: float, same_edit: bool, profile: str,
           revision_at_start: str, busy: float | None, during: float | None,
           cpu: dict[str, Cpu], cpu_large: dict[str, Cpu] | None = None) -> str:
    """Print the figures and return the Markdown section; `script` is promote.py's path."""
    main_rows = common.timing_rows([res[k] for k in ("cli", "inproc", "floor_cli",
                                                      "floor_inproc", "peer", "verifying",
                                                      "large_cli", "large_peer",
                                                      "large_verifying") if k in res])
    parts = ["bare", "startup", "clone", "heads", "raw_heads", "overlay", "render", "push"]
    part_rows = common.timing_rows([res[k] for k in parts])
    inproc = res["inproc"].median
    pieces = sum(res[k].median for k in ("clone", "heads", "overlay", "render", "push"))
    rest = inproc - pieces
    part_rows.append(["rest of the in-process promotion (derived)",
                      fmt_seconds(rest) if rest > 0 else "—", "", "", "",
                      "in-process median minus clone, checks, overlay, render, push (the "
                      "checks overlap the overlay's compile and render: a lower bound)"
                      + ("" if rest > 0 else f": the pieces, each timed alone, add up to "
                         f"{fmt_seconds(pieces)}, more than the whole")])
    shares = (f"The overlay edit alone is {res['overlay'].median / inproc:.0%} of the "
              f"in-process promotion; the fresh process adds "
              f"{fmt_seconds(max(res['cli'].median - inproc, 0.0))} over the in-process run "
              f"(start-up and imports measure {fmt_seconds(res['startup'].median)}).")
    ratios = ratio_rows(res, args.components, args.large)
    cpus = cpu_rows(cpu)
    cpus_large = cpu_rows(cpu_large) if cpu_large else None
    races = race_rows(rounds, race, args.race_components)
    race_table = common.timing_rows([race])
    print()
    print(common.text_table(common.TIMING_HEADERS, main_rows))
    print()
    print("breakdown (each piece on its own):")
    print(common.text_table(common.TIMING_HEADERS, part_rows))
    print(shares)
    print()
    print(common.text_table(CPU_HEADERS, cpus))
    print()
    if cpus_large:
        print(f"at {args.large:,} pins:")
        print(common.text_table(CPU_HEADERS, cpus_large))
        print()
    print(common.text_table(common.TARGET_HEADERS, ratios))
    print()
    print(common.text_table(common.TIMING_HEADERS, race_table))
    print()
    print(common.text_table(("what", "measured", "target", "result"), races))
    print()
    print(f"floor writes the same bytes as mlops promote: {'yes' if same_edit else 'NO'}")
    for row in [*(r for r in ratios if r[3] != "info"), races[0]]:  # targets, then racers
        print(f"target {row[0]} {row[2]}: {row[3]} ({row[1]})")
    print()
    print(profile)

    m = common.machine()
    revision = common.revision_since(revision_at_start)
    git_version = common.tool_version(["git", "--version"]).removeprefix("git version ")
    large = f" and {args.large:,}" if "large_cli" in res else ""
    large_method = (f" At {args.large:,} pins, a repository of its own: a fresh `mlops "
                    "promote` and both peers, run in turns." if large else "")
    title = f"Promotion (`mlops promote`, {args.components}{large} pinned images into one overlay)"
    return f"""### {title}

Targets (DESIGN.md, "Performance targets"): promotion of {args.components}{large}
pinned images no slower than the script a Kargo or Image Updater user effectively
runs (`git clone --depth 1`, one set-image edit, commit, push), while still
verifying every digest; ten promoters racing on one remote all land, and the
total time is reported. The floor (the same file edits plus `git commit` in a
clone one already has; the old target was {FLOOR_TARGET:g}× of it) is context.

- Date: {m['date']}
- Code: `mlops/` as of commit {revision}
- Machine: nproc {m['nproc']} ({m['cpu']}), {m['python']}, {m['os']},
  git {git_version}; {busy_note(busy, during)}
- Reproduce: `{common.command_line(script)}` (or `make bench`)
- Method: median of {args.repeat} runs after one warm-up; the six measurements of
  the first table run interleaved, round-robin. A generated repository of
  {args.components} components (`component.yaml`, a 3-line Dockerfile, two sources
  and a test each; no `pipelines/`, so no kfp compile), a bare remote, and a local
  registry holding
  two images per component (A and B, pushed through the registry API in
  {setup_seconds:.0f} s, not measured). Runs alternate the build records A and B,
  so each promotion re-pins all {args.components} images and commits and pushes a
  new release to `{ENV}`; each one also clones the remote and checks the
  {args.components} digests in the registry. The floor is a standard-library
  script that writes `environments/{ENV}/kustomization.yaml` and `release.yaml`
  (byte for byte what `mlops promote` wrote: {'yes' if same_edit else 'NO'})
  and runs `git commit -a`, in a plain clone; it neither clones, checks the
  registry nor pushes. Fresh processes are `{Path(sys.executable).name} -m mlops`
  and `{Path(sys.executable).name} -c FLOOR`, so both pay the same interpreter
  start-up. The peer script (benchmarks/_promote_peer.py, the fifth measurement)
  clones a copy of the remote with `--depth 1`, re-pins every image in the
  overlay, commits and pushes, and checks no digest. The verifying peer
  (benchmarks/_promote_verifying_peer.py, the sixth) is the same script with
  the check the target keeps: a fresh `{Path(sys.executable).name}` that fetches
  every pinned manifest by digest over 8 keep-alive connections and hashes it,
  while it clones, edits and commits, and pushes only if all match. It is the
  cheapest verifying promotion we could write, so `verifying / peer` is what the
  verification costs any tool and `promote / verifying` is mlops' own share (the
  render, trust root, approval, gates and provenance checks, the release
  record, its imports).{large_method}
- Racers: {RACERS} `mlops promote --to {ENV} --build RECORD_i --metrics METRICS_i`
  processes started together on a repository of {args.race_components} components
  (records A/B alternating, accuracy 0.90 + i/1000 shifted by 0.010 per round, so
  ten distinct releases), {args.rounds} rounds after one warm-up round; each must
  exit 0 and the remote gain exactly ten commits of ten different releases.

{common.md_table(common.TIMING_HEADERS, main_rows)}

Where a promotion's time goes: each piece measured on its own.

{common.md_table(common.TIMING_HEADERS, part_rows)}

{shares}

Where its CPU time goes ({args.repeat} fresh promotions, both peer scripts, a bare
interpreter, a promotion's imports and a render of the promoted overlay in turns;
`waitid(WNOWAIT)` reads each process' own and its children's CPU time before it is
reaped, the registry's from its /proc entry: benchmarks/_promote_cpu.py), at
{args.components} pins:

{common.md_table(CPU_HEADERS, cpus)}
{_large_cpu_table(args.large, cpus_large)}

{common.md_table(common.TARGET_HEADERS, ratios)}

{common.md_table(common.TIMING_HEADERS, race_table)}

{common.md_table(("what", "measured", "target", "result"), races)}
"""


def _large_cpu_table(large: int, rows: list[list[str]] | None) -> str:
    if not rows:
        return ""
    return f"\nAnd at {large:,} pins:\n\n{common.md_table(CPU_HEADERS, rows)}\n"
