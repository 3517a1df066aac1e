#!/usr/bin/env python3
"""Promotion of 200 pinned images into one overlay, and ten racing promoters.

Targets (DESIGN.md, "Performance targets"): `mlops promote` of 200 pinned
images into one overlay is within 2x of the floor, which is the same file
edits made by a script plus `git commit`; ten promoters racing on one remote
all land, and the total time is reported.

Set-up, not measured: a registry on 127.0.0.1 holding two small images per
component (A and B: one tiny layer, configs that differ), pushed straight
through the Distribution HTTP API (no docker build), and two build records
that name them by the digests the registry reports. A bare git remote and a
clone with 200 components (`component.yaml`, a 3-line Dockerfile), the
environments dev/staging/prod with no gates, and no pipelines/ folder (so no
kfp compile happens).

Measured, each as the median of N runs after one warm-up, alternating A and B
so that every run re-pins all 200 images; the first four run interleaved,
round-robin, so that load from other work falls on promote and floor alike:
  CLI          `python3 -m mlops promote --to dev --build A|B` (fresh process)
  in-process   mlops.cli.main([...]) after one import: the work without
               interpreter start-up and imports
  floor        a script that makes the same edits (the 200 `images:` entries of
               environments/dev/kustomization.yaml and environments/dev/release.yaml,
               byte for byte what mlops writes) and runs `git commit`, in a plain
               clone of the remote; as a fresh `python3 -c` process and in-process
  breakdown    the pieces of a promotion on their own: start-up and imports, the
               clone, the 200 digest checks, the overlay edit, the push
Then ten `mlops promote` processes started together against one remote, each
with its own build record and metrics (a distinct release); all must exit 0 and
the remote must gain exactly ten commits. And one cProfile run of the
in-process promotion, top functions printed.

Usage: python3 benchmarks/promote.py [--repeat N] [--components N]
       [--race-components N] [--rounds N] [--no-readme]
It rewrites its own section of benchmarks/README.md and exits 0 whether or not
the targets are met; 1 means it could not measure. The set-up, the floor, the
racers and the report live beside it in _promote_fixture.py, _promote_floor.py,
_promote_race.py and _promote_report.py (make bench runs only the scripts
without a leading _).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import common
from _promote_cpu import PROMOTE_IMPORTS, measure_cpu
from _promote_fixture import (
    ENV,
    MANIFEST_V2,
    Alternator,
    Setup,
    commit_count,
    setup,
)
from _promote_floor import FLOOR_SCRIPT, check_floor_is_same_edit, current_variant, load_floor
from _promote_peer import PEER_NOTE, VERIFYING_NOTE, Peer, VerifyingPeer, measure_at
from _promote_race import measure_race
from _promote_report import BUSY, OtherWork, busy_note, report
from common import BenchError, LocalRegistry, Timing, run

SECTION = "promote"
PROFILE_TOP = 20
PROFILE_TOP_OWN = 12
CHECK_THREADS = 8  # what imagecheck and verify_digests use


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--components", type=common.at_least(1), default=200, metavar="N",
                   help="components (pinned images) in the promoted repository (default 200)")
    p.add_argument("--repeat", type=common.at_least(1), default=7, metavar="N",
                   help="timed runs per measurement, after one warm-up (default 7)")
    p.add_argument("--large", type=common.at_least(0), default=1000, metavar="N",
                   help="also promote N pins against the peer script, in turns "
                        "(default 1000; 0: skip)")
    p.add_argument("--race-components", type=common.at_least(1), default=20, metavar="N",
                   help="components in the racers' repository (default 20)")
    p.add_argument("--rounds", type=common.at_least(1), default=3, metavar="N",
                   help="timed rounds of ten racers, after one warm-up round (default 3)")
    p.add_argument("--no-readme", action="store_true",
                   help="print only; leave benchmarks/README.md alone")
    args = p.parse_args(argv)
    if args.race_components > args.components:
        p.error("--race-components cannot exceed --components")
    return args


def preflight() -> list[str]:
    problems = []
    for tool in ("git", "docker-registry"):
        if not shutil.which(tool):
            problems.append(f"{tool} is not installed (run hack/setup.sh)")
    try:
        import mlops.cli  # noqa: F401
    except ImportError as exc:
        problems.append(f"cannot import mlops ({exc}); pip install -e .")
    return problems


# -- measurements -------------------------------------------------------------


def measure_split(name: str, prepare: Callable[[], object], fn: Callable[[], object],
                  repeat: int, note: str = "") -> Timing:
    """Like common.measure, with an untimed `prepare` before each run (and the warm-up)."""
    prepare()
    fn()
    timing = Timing(name, note=note)
    for _ in range(repeat):
        prepare()
        start = time.perf_counter()
        fn()
        timing.seconds.append(time.perf_counter() - start)
    return timing


def _quiet_main(argv: list[str]) -> int:
    import mlops.cli

    with open(os.devnull, "w") as devnull:
        with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            return mlops.cli.main(argv)


def measure_interleaved(
    specs: list[tuple[str, Callable[[], object], str]], repeat: int
) -> list[Timing]:
    """Like common.measure for several things at once, run round-robin.

    One warm-up of each, then `repeat` rounds of one run of each, so that load
    from other work on the machine falls on all of them alike and their ratios
    stay fair.
    """
    timings = [Timing(name, note=note) for name, _, note in specs]
    for _, fn, _ in specs:
        fn()
    for _ in range(repeat):
        for timing, (_, fn, _) in zip(timings, specs, strict=True):
            start = time.perf_counter()
            fn()
            timing.seconds.append(time.perf_counter() - start)
    return timings


def measure_promote(s: Setup, n: int) -> dict[str, Timing]:
    promoter = Alternator(s.records)  # shared: the remote alternates A, B, A, ...
    floor_records = Alternator(s.records)  # the floor clone alternates on its own

    def argv() -> list[str]:
        return ["promote", "--to", ENV, "--build", str(promoter.next()), "--repo", str(s.clone)]

    def in_process() -> None:
        code = _quiet_main(argv())
        if code != 0:
            raise BenchError(f"mlops.cli.main(promote) returned {code} in-process")

    import mlops.cli  # noqa: F401  once; the warm-up also imports the promote command

    floor_fn = load_floor()
    print(f"measuring: median of {n} runs after one warm-up each; promote and floor "
          "interleaved", flush=True)
    before = commit_count(s.remote)
    # Fresh processes run in the clone, as a user would run them (and so that
    # `python3 -c` cannot pick up a package from our own cwd).
    cli, inproc, floor_cli, floor_inproc, peer, verifying = measure_interleaved([
        (f"mlops promote --to {ENV} --build A|B (fresh process)",
         lambda: run([sys.executable, "-m", "mlops", *argv()], cwd=s.clone, capture=False),
         ""),
        ("mlops.cli.main([promote, ...]) (in-process)", in_process,
         "after import and one warm-up"),
        ("floor: script edits + git commit (fresh process)",
         lambda: run([sys.executable, "-c", FLOOR_SCRIPT, str(s.floor_clone),
                      str(floor_records.next())], cwd=s.floor_clone, capture=False),
         "python3 -c, standard library only"),
        ("floor: script edits + git commit (in-process)",
         lambda: floor_fn(str(s.floor_clone), str(floor_records.next())), ""),
        ("peer script: git clone --depth 1, set-image edit, commit, push", Peer(s, "main"),
         PEER_NOTE),
        ("verifying peer script: the peer with every digest checked",
         VerifyingPeer(s, "main-verifying"), VERIFYING_NOTE),
    ], n)
    gained = commit_count(s.remote) - before
    if gained != 2 * (n + 1):  # the peers push to copies of the remote
        raise BenchError(f"the remote gained {gained} commits, not {2 * (n + 1)}: "
                         "not every promotion pinned a new release")
    results = {"cli": cli, "inproc": inproc, "floor_cli": floor_cli,
               "floor_inproc": floor_inproc, "peer": peer, "verifying": verifying}
    results.update(measure_breakdown(s, n, floor_fn, floor_records))
    return results


def measure_breakdown(s: Setup, n: int, floor_fn: Callable[..., object],
                      floor_records: Alternator) -> dict[str, Timing]:
    """The pieces of one promotion, each on its own (informational)."""
    from mlops import overlay
    from mlops import release as rel
    from mlops.adapters.gitops.workspace import SPARSE_CHECKOUT
    from mlops.services import registries

    results: dict[str, Timing] = {}
    results["bare"] = common.measure(
        "python3 -c pass", lambda: run([sys.executable, "-c", "pass"], cwd=s.clone,
                                       capture=False),
        n, note="bare interpreter start-up",
    )
    results["startup"] = common.measure(
        "python3 start-up + the imports of a promotion",
        lambda: run([sys.executable, "-c", PROMOTE_IMPORTS], cwd=s.clone, capture=False),
        n, note="mlops.cli, commands.promote, registry (http.client)",
    )
    scratch = s.tmp / "clone-timing"

    def clone_like_workspace() -> None:
        run(["git", "clone", "--quiet", "--no-tags", "--single-branch", "--branch", "main",
             "--no-checkout", "--reference-if-able", str(s.clone), str(s.remote), str(scratch)])
        (scratch / ".git" / "info").mkdir(exist_ok=True)
        (scratch / ".git" / "info" / "sparse-checkout").write_text(SPARSE_CHECKOUT)
        run(["git", "config", "core.sparseCheckout", "true"], cwd=scratch)
        run(["git", "read-tree", "-mu", "HEAD"], cwd=scratch)
        shutil.rmtree(scratch)

    results["clone"] = common.measure(
        "git clone of the remote + rm -r (as the workspace does)", clone_like_workspace, n,
        note="--reference-if-able the user's clone; sparse: no component sources",
    )

    releases = {}
    for variant, path in s.records.items():
        record = json.loads(path.read_text())
        releases[variant] = rel.Release(
            source_commit=record["source_commit"],
            images={b["component"]: rel.Image(b["image"], b["digest"]) for b in record["builds"]},
        )
    results["heads"] = common.measure(
        f"{len(s.names)} digest checks (registries.verify_digests)",
        lambda: registries.verify_digests(releases["a"]), n,
        note=f"a new client each run, as a promotion has; manifest GETs, hashed, "
             f"{CHECK_THREADS} threads",
    )

    results["raw_heads"] = common.measure(
        f"{len(s.names)} manifest GETs, bare http.client, {CHECK_THREADS} connections",
        lambda: raw_gets(s.registry.host, releases["a"]), n,
        note="the registry's own share of the checks: no hashing, no retries",
    )

    texts = {"": overlay.kustomization_path(s.clone, ENV).read_text()}
    state = {"pins": ""}

    def edit_overlay() -> None:
        variant = "b" if state["pins"] == "a" else "a"
        pins = {k: (v.image, v.digest) for k, v in releases[variant].images.items()}
        texts[variant] = overlay.set_images(texts[state["pins"]], pins,
                                            overlay.display_path(ENV))
        state["pins"] = variant

    results["overlay"] = common.measure(
        f"overlay.set_images: re-pin {len(s.names)} images", edit_overlay, n,
        note="the kustomization edit alone, in memory",
    )
    record = rel.EnvRecord(ENV, releases["a"], "build")
    results["render"] = common.measure(
        "release.render: release.yaml text", lambda: rel.render(record), n,
        note="libyaml's emitter (safeyaml.dump)",
    )
    results["push"] = measure_split(
        "git push of one promotion commit",
        lambda: floor_fn(str(s.floor_clone), str(floor_records.next())),
        lambda: run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], cwd=s.floor_clone),
        n, note="the floor's commit, to a bare remote of its own",
    )
    return results


def raw_gets(host: str, release: object) -> None:
    """GET every pinned manifest over keep-alive connections, one per thread, as a
    promotion's checks do, with nothing else: no client library, no hashing."""
    import http.client
    import threading
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    opened: list[http.client.HTTPConnection] = []

    def get(img) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, timeout=30)
            opened.append(conn)
        repository = img.image.split("/", 1)[1]
        conn.request("GET", f"/v2/{repository}/manifests/{img.digest}",
                     headers={"Accept": MANIFEST_V2})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise BenchError(f"registry: GET {img.ref} gave HTTP {resp.status}")

    try:
        with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
            list(pool.map(get, release.images.values()))  # type: ignore[attr-defined]
    finally:
        for conn in opened:
            conn.close()


# -- profile ------------------------------------------------------------------


def profile_promote(s: Setup) -> tuple[str, float]:
    """One cProfile run of the in-process promotion: (the top functions as text, total s)."""
    variant = "b" if current_variant(s) == "a" else "a"
    argv = ["promote", "--to", ENV, "--build", str(s.records[variant]), "--repo", str(s.clone)]
    prof = cProfile.Profile()
    prof.enable()
    code = _quiet_main(argv)
    prof.disable()
    if code != 0:
        raise BenchError(f"the profiled promotion returned {code}")
    stats = pstats.Stats(prof)
    total = max(v[3] for v in stats.stats.values())  # type: ignore[attr-defined]
    text = (
        f"profile of one in-process promotion ({total * 1e3:.0f} ms under cProfile, "
        f"main thread; subprocesses count as the time waited for them)\n\n"
        f"top {PROFILE_TOP} by cumulative time:\n"
        f"{common.profile_table(stats, 'cumulative', PROFILE_TOP)}\n\n"
        f"top {PROFILE_TOP_OWN} by own time:\n"
        f"{common.profile_table(stats, 'tottime', PROFILE_TOP_OWN)}"
    )
    return text, total


# -- main ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not common.ready_to_run("promote", preflight()):
        return 1
    revision = common.project_revision()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-promote-"))
    registry = LocalRegistry(tmp / "registry")
    try:
        registry.start()
        s, setup_seconds = setup(tmp, registry, args.components)
        busy = common.cpu_busy()
        if busy is not None and busy > BUSY:
            print(f"note: the CPUs were {busy:.0%} busy with other work before measuring; "
                  "the figures will be noisy", flush=True)
        start = time.perf_counter()
        others = OtherWork(registry.proc.pid if registry.proc else None)
        others.begin()
        results = measure_promote(s, args.repeat)
        same_edit = check_floor_is_same_edit(s)
        cpu = measure_cpu(s, args.repeat, registry.proc.pid if registry.proc else None)
        profile, _ = profile_promote(s)
        cpu_large = None
        if args.large and args.large != args.components:
            large, large_setup = measure_at(tmp, registry, args.large, args.repeat)
            results["large_cli"], results["large_peer"], results["large_verifying"] = large
            cpu_large = measure_cpu(large_setup, args.repeat,
                                    registry.proc.pid if registry.proc else None)
        rounds, race = measure_race(s, args.race_components, args.rounds)
        during = others.share()
        print(f"measured in {time.perf_counter() - start:.0f}s; {busy_note(busy, during)}",
              flush=True)
        section = report(__file__, results, rounds, race, args, setup_seconds, same_edit,
                         profile, revision, busy, during, cpu, cpu_large)
        if not args.no_readme:
            common.write_section(SECTION, section)
            print(f"\nwrote the {SECTION} section of {common.README}")
    except BenchError as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
