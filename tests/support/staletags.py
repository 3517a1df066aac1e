"""Image tags of test registries that are gone, removed so they do not pile up.

Every test registry listens on 127.0.0.1 at a port of its own, and every image
pushed there keeps a local tag `127.0.0.1:<port>/...` after the registry is
gone. They pile up run after run (8,253 tags on 2,901 images were found on
this machine), and kfp's local Docker runner inspects every image the engine
lists before each pipeline task (kfp/local/docker_task_handler.py,
`run_docker_container`: `any(... for existing_image in client.images.list())`,
one inspect call per image): 6-16 s a task, ~15 tasks a suite.

Tags of a registry that no longer accepts connections are removed. One image
per component of this repository is tagged `mlops-test/keep-<component>`
first, so the layer cache of its `pip install` (hundreds of MB, from the
network) survives for the next build.

Only a session alone on this engine cleans (`SessionLock`): another session's
registry may refuse connections for a while on purpose (a fault test), and
its tags are not stale.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path

LOCAL_TAG = re.compile(r"^(?:127\.0\.0\.1|localhost):(\d+)/(\S+):(\S+)$")
KEEP_PREFIX = "mlops-test/keep-"
BATCH = 200


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stale_tags(lines: Iterable[str], listening) -> list[tuple[str, str, str]]:
    """(tag, image id, repository's last part) of each local-registry tag whose port is
    closed. `lines` are `docker images` rows: `<repo>:<tag> <id>`, newest first."""
    open_ports: dict[int, bool] = {}
    found = []
    for line in lines:
        parts = line.split()
        match = LOCAL_TAG.match(parts[0]) if len(parts) == 2 else None
        if match is None:
            continue
        port = int(match.group(1))
        if port not in open_ports:
            open_ports[port] = listening(port)
        if not open_ports[port]:
            found.append((parts[0], parts[1], match.group(2).rsplit("/", 1)[-1]))
    return found


def keepers(stale: list[tuple[str, str, str]], components: set[str]) -> dict[str, str]:
    """component -> the newest stale image of it, to keep its layers."""
    keep: dict[str, str] = {}
    for _tag, image_id, name in stale:
        if name in components:
            keep.setdefault(name, image_id)
    return keep


def forget_stale_tags(components_dir: Path) -> int:
    """Remove the tags of gone test registries; how many were removed."""
    listing = _docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    if listing.returncode != 0:
        return 0
    stale = stale_tags(listing.stdout.splitlines(), _listening)
    components = {p.name for p in components_dir.iterdir() if p.is_dir()}
    for name, image_id in keepers(stale, components).items():
        _docker("tag", image_id, f"{KEEP_PREFIX}{name}:latest")
    tags = [tag for tag, _, _ in stale]
    for start in range(0, len(tags), BATCH):
        _docker("rmi", *tags[start:start + BATCH])  # an image a container uses stays
    return len(tags)


class SessionLock:
    """Held shared by every test session for its whole run; `alone()` says whether this
    session may take it exclusively for a moment, that is, no other session is running."""

    PATH = Path("/tmp/mlops-test-sessions.lock")  # not $TMPDIR: sessions may differ in it

    def __init__(self) -> None:
        self.fd = os.open(self.PATH, os.O_RDWR | os.O_CREAT, 0o666)

    def alone(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # converts our shared lock
        except BlockingIOError:
            self.share()  # a failed conversion may have dropped the lock we held
            return False
        return True

    def share(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def close(self) -> None:
        os.close(self.fd)


if __name__ == "__main__":
    import sys

    root = Path(__file__).resolve().parents[2]
    print(f"removed {forget_stale_tags(root / 'components')} stale test-registry tags",
          file=sys.stderr)
