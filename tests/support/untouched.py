"""Proof that a failed command left nothing behind.

`Snapshot.take(...)` records everything a command could change: the user's
working tree (HEAD, every file's bytes, the index's view of it, the local
branches), the bare remote's refs, and the tag list of every repository in the
registry. Take one before the command and one after; `assert_same` names what
differs, so a half-done failure shows up as a readable diff::

    before = Snapshot.take(repo=play.clone, remote=play.remote, registry=server)
    result = play.proj.run("promote", ...)
    before.assert_same(Snapshot.take(repo=play.clone, remote=play.remote, registry=server))
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import RegistryServer

TEMP_PREFIXES = ("mlops-",)  # workspace, compile and validate temp dirs


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, `.git` excluded, by relative path."""
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".git":
            continue
        if path.is_symlink():
            files[str(rel)] = "symlink:" + str(path.readlink())
        elif path.is_file():
            files[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            files[str(rel) + "/"] = "dir"
    return files


def repo_state(root: Path) -> dict[str, object]:
    return {
        "HEAD": _git(root, "rev-parse", "--verify", "-q", "HEAD").strip()
        if _git(root, "rev-parse", "--is-inside-work-tree").strip() == "true" else "",
        "refs": _git(root, "for-each-ref", "--format=%(refname) %(objectname)"),
        "status": _git(root, "status", "--porcelain", "--untracked-files=all"),
        "files": tree_digest(root),
    }


def remote_refs(remote: Path) -> str:
    return _git(remote, "for-each-ref", "--format=%(refname) %(objectname)")


def registry_tags(server: RegistryServer) -> dict[str, list[str]]:
    """Every repository in the registry and its tags, read from the registry's own API."""
    repositories: list[str] = []
    url: str | None = "/v2/_catalog?n=1000"
    while url:  # Distribution pages the catalog; follow its Link header
        with urllib.request.urlopen(f"http://{server.host}{url}", timeout=10) as resp:
            repositories += json.load(resp).get("repositories") or []
            link = resp.headers.get("Link") or ""
        url = link[1:link.index(">")] if link.startswith("<") else None
    return {name: server.tags(name) for name in sorted(repositories)}


def leftover_temp_dirs() -> set[str]:
    """mlops's own temp dirs: a failed command must remove what it made."""
    tmp = Path(tempfile.gettempdir())
    return {p.name for p in tmp.iterdir() if p.name.startswith(TEMP_PREFIXES)}


@dataclass
class Snapshot:
    parts: dict[str, object] = field(default_factory=dict)

    @classmethod
    def take(cls, repo: Path | None = None, remote: Path | None = None,
             registry: RegistryServer | None = None,
             extra: tuple[Path, ...] = ()) -> Snapshot:
        parts: dict[str, object] = {"temp dirs": leftover_temp_dirs()}
        if repo is not None:
            parts["work tree"] = repo_state(repo)
        if remote is not None:
            parts["remote refs"] = remote_refs(remote)
        if registry is not None:
            parts["registry tags"] = registry_tags(registry)
        for path in extra:
            parts[f"files under {path}"] = tree_digest(path) if path.exists() else None
        return cls(parts)

    def differences(self, after: Snapshot) -> list[str]:
        changed = []
        for key, value in self.parts.items():
            new = after.parts.get(key)
            if key == "temp dirs":
                # Other tests' workspaces may come and go; only new ones count.
                added = set(new or ()) - set(value)  # type: ignore[arg-type]
                if added:
                    changed.append(f"temp dirs left behind: {sorted(added)}")
            elif new != value:
                changed.append(f"{key} changed:\n  before: {value!r}\n  after:  {new!r}")
        return changed

    def assert_same(self, after: Snapshot) -> None:
        changed = self.differences(after)
        assert not changed, "\n".join(changed)
