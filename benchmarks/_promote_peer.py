"""The promotion benchmark's peer: the script a Kargo or Image Updater user effectively runs.

`git clone --depth 1` of the branch, one set-image edit of the overlay (every
pin of the build record, as one `kustomize edit set image` with an argument per
image would make it), `git commit -a` and `git push`. It checks no digest in
the registry. Two choices keep the peer as fast as any such script can be:
the edit runs inside the benchmark's own process (no interpreter or tool to
start; there is no kustomize binary here), and each run clones into a new
folder that is removed only at the end, untimed (a CI job's workspace goes
away with the job). Used by benchmarks/promote.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import common
from _promote_fixture import ENV, Alternator, Setup, setup
from common import LocalRegistry, Timing, run

PEER_NOTE = "no digest checked; the edit in-process, the clone removed untimed"
VERIFYING_NOTE = ("the peer plus every manifest GET by digest and hashed, 8 connections, "
                  "during the clone; a fresh python3, standard library only")
VERIFYING_SCRIPT = Path(__file__).with_name("_promote_verifying_peer.py")
GIT = ["git", "-c", "user.name=peer", "-c", "user.email=peer@127.0.0.1",
       "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]


def set_images(kustomization: Path, record: Path) -> None:
    """The set-image edit: the overlay's `images:` block pins every build of the record."""
    builds = sorted(json.loads(record.read_text())["builds"], key=lambda b: b["component"])
    text = kustomization.read_text()
    cut = text.find("\nimages:\n")
    out = [text if cut < 0 else text[: cut + 1], "images:\n"]
    for b in builds:
        out += [f"  - name: {b['component']}\n", f"    newName: {b['image']}\n",
                f"    digest: {b['digest']}\n"]
    kustomization.write_text("".join(out))


class Peer:
    """Clone-edit-commit-push against a bare copy of the benchmark's remote."""

    def __init__(self, s: Setup, label: str) -> None:
        self.base = s.tmp / f"peer-{label}"
        self.base.mkdir()
        self.remote = self.base / "remote.git"
        run(["git", "clone", "-q", "--bare", str(s.remote), str(self.remote)])
        self.records = Alternator(s.records)
        self.runs = 0
        if _pins_first_record(self.remote, s.records):
            self.records.next()  # each run must re-pin every image, from the first on

    def __call__(self) -> None:
        self.runs += 1
        work = self.base / f"work-{self.runs}"
        run(["git", "clone", "-q", "--depth", "1", "--single-branch", "--branch", "main",
             f"file://{self.remote}", str(work)])
        set_images(work / "environments" / ENV / "kustomization.yaml", self.records.next())
        run([*GIT, "commit", "-q", "-a", "--no-verify", "-m", f"set images in {ENV}"], cwd=work)
        run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], cwd=work)


class VerifyingPeer(Peer):
    """The peer with every digest checked (`_promote_verifying_peer.py`, a fresh process)."""

    def __call__(self) -> None:
        run(self.argv())

    def argv(self) -> list[str]:
        """The next run's command line (each run clones into a folder of its own)."""
        self.runs += 1
        work = self.base / f"work-{self.runs}"
        return [sys.executable, str(VERIFYING_SCRIPT), str(self.remote), str(work),
                str(self.records.next())]


def _pins_first_record(remote: Path, records: dict[str, Path]) -> bool:
    """Whether the remote's overlay pins the record the peer would write first already
    (the same bytes: its commit would be empty)."""
    overlay = run(["git", "--git-dir", str(remote), "show",
                   f"main:environments/{ENV}/kustomization.yaml"])
    first = json.loads(Alternator(records).next().read_text())["builds"][0]["digest"]
    return first in overlay


def promote_argv(s: Setup, records: Alternator) -> list[str]:
    return [sys.executable, "-m", "mlops", "promote", "--to", ENV, "--build",
            str(records.next()), "--repo", str(s.clone)]


def measure_at(tmp: Path, registry: LocalRegistry, count: int,
               repeat: int) -> tuple[list[Timing], Setup]:
    """mlops promote (fresh process) and both peers, in turns, on a repository of `count`;
    and that repository's set-up, for the CPU accounting at the same size."""
    base = tmp / f"pins-{count}"
    base.mkdir()
    s, _ = setup(base, registry, count)
    records, peer = Alternator(s.records), Peer(s, str(count))
    verifying = VerifyingPeer(s, f"{count}-verifying")
    print(f"measuring at {count} pins: {repeat} rounds in turns after one warm-up", flush=True)
    return common.measure_turns([
        (f"mlops promote, {count} pins (fresh process)",
         lambda: run(promote_argv(s, records), cwd=s.clone, capture=False), ""),
        (f"peer script, {count} pins", peer, PEER_NOTE),
        (f"verifying peer script, {count} pins", verifying, VERIFYING_NOTE)], repeat), s
