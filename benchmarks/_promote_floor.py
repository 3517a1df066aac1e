"""The promotion benchmark's floor: the same file edits by a script, and `git commit`.

FLOOR_SCRIPT uses only the standard library, so its cost is the edit itself;
check_floor_is_same_edit proves it writes the bytes `mlops promote` wrote.
Used by benchmarks/promote.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from _promote_fixture import ENV, Setup, record_digests
from common import BenchError, run

# The floor: the same two files, byte for byte, and one `git commit`. Run as
# `python3 -c FLOOR_SCRIPT CLONE RECORD` (fresh process) or exec'd once and
# called (in-process). Only the standard library: a script, not mlops.
FLOOR_SCRIPT = r'''
import hashlib
import json
import subprocess
import sys
from pathlib import Path

HEADER = "# Written by `mlops promote`, `rollback` and `rollout`. Do not edit by hand.\n"
GIT = ["git", "-c", "user.name=floor", "-c", "user.email=floor@127.0.0.1",
       "-c", "commit.gpgsign=false"]


def floor(clone, record_path, env="dev", commit=True):
    root = Path(clone)
    record = json.loads(Path(record_path).read_text())
    builds = sorted(record["builds"], key=lambda b: b["component"])
    folder = root / "environments" / env
    # kustomization.yaml: everything up to `images:` stays; the block is rewritten.
    kust = folder / "kustomization.yaml"
    text = kust.read_text()
    cut = text.find("\nimages:\n")
    out = [text if cut < 0 else text[: cut + 1], "images:\n"]
    for b in builds:
        out += [f"  - name: {b['component']}\n", f"    newName: {b['image']}\n",
                f"    digest: {b['digest']}\n"]
    kust.write_text("".join(out))
    # release.yaml: the release record, with its content-addressed id.
    source = record.get("source_commit")
    content = {"source_commit": source,
               "images": {b["component"]: {"image": b["image"], "digest": b["digest"]}
                          for b in builds},
               "pipelines": {}, "model_uri": None, "metrics": {}}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    rid = "r-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]
    out = [HEADER, "apiVersion: mlops.dev/v1\n", "kind: Release\n", f"id: {rid}\n",
           f"environment: {env}\n", "promoted_from: build\n",
           f"source_commit: {source or 'null'}\n", "images:\n"]
    for b in builds:
        out += [f"  {b['component']}:\n", f"    image: {b['image']}\n",
                f"    digest: {b['digest']}\n"]
    out += ["pipelines: {}\n", "model_uri: null\n", "metrics: {}\n", "gates: []\n",
            "approval: null\n", "hold: null\n"]
    release = folder / "release.yaml"
    new = not release.exists()
    release.write_text("".join(out))
    if not commit:
        return
    if new:
        subprocess.run([*GIT, "add", "--", str(release)], cwd=root, check=True)
    message = f"promote {env}: release {rid}\n\nMlops-Release: {rid}\n"
    subprocess.run([*GIT, "commit", "-q", "-a", "--no-verify", "-m", message],
                   cwd=root, check=True)


if __name__ == "__main__":
    floor(sys.argv[1], sys.argv[2])
'''


def load_floor() -> Callable[..., None]:
    """FLOOR_SCRIPT's floor(), for in-process runs; a failed git commit is a BenchError."""
    namespace: dict[str, object] = {"__name__": "bench_floor"}
    exec(compile(FLOOR_SCRIPT, "<floor>", "exec"), namespace)  # noqa: S102 (our own text)
    floor = namespace["floor"]
    assert callable(floor)

    def call(*args: object, **kwargs: object) -> None:
        try:
            floor(*args, **kwargs)
        except subprocess.CalledProcessError as exc:
            raise BenchError(f"the floor's git exited {exc.returncode}") from None

    return call


def check_floor_is_same_edit(s: Setup) -> bool:
    """The floor writes the two files exactly as mlops promote did for the same record.

    Run after the floor's timings, without committing: the floor clone may hold
    that record already.
    """
    load_floor()(str(s.floor_clone), str(s.records[current_variant(s)]), commit=False)
    same = True
    for name in ("kustomization.yaml", "release.yaml"):
        theirs = run(["git", "show", f"refs/heads/main:environments/{ENV}/{name}"], cwd=s.remote)
        ours = (s.floor_clone / "environments" / ENV / name).read_text()
        if theirs != ours:
            first = next((a, b) for a, b in zip(theirs.splitlines() + [""],
                                                  ours.splitlines() + [""], strict=False)
                         if a != b)
            print(f"warning: the floor's {name} differs from what mlops promote wrote "
                  f"({len(ours)} against {len(theirs)} bytes); first difference: "
                  f"mlops {first[0]!r}, floor {first[1]!r}", flush=True)
            same = False
    return same


def current_variant(s: Setup) -> str:
    """The record ("a" or "b") whose digests the remote's dev release pins now."""
    pinned = run(["git", "show", f"refs/heads/main:environments/{ENV}/release.yaml"],
                 cwd=s.remote)
    a_digest = next(iter(record_digests(s.records["a"]).values()))
    return "a" if a_digest in pinned else "b"
