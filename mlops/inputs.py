"""Input hashing: what determines a component's image, as one sha256.

Pure: it works on the list of tracked files that `gitops` reads, so hashing
200 components costs one `git ls-files` and no file reads for clean files.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from mlops.components import ComponentSpec
from mlops.config import BuildSettings

HASH_VERSION = b"mlops-input-hash/v1"
IH_TAG_LENGTH = 20


class TrackedFile(NamedTuple):
    """One file as git sees it: repo-relative path, mode and blob id.

    A NamedTuple, not a dataclass: hundreds are made and sorted per plan, and
    tuples compare in C.
    """

    path: str
    mode: str
    blob: str


class FileIndex:
    """Tracked files sorted by path, for prefix lookups without rescanning."""

    def __init__(self, files: Iterable[TrackedFile], presorted: bool = False) -> None:
        self.files = list(files) if presorted else sorted(files)
        self.keys = [f.path for f in self.files]
        self._by_path = dict(zip(self.keys, self.files, strict=True))

    def get(self, path: str) -> TrackedFile | None:
        return self._by_path.get(path)

    def has_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        i = bisect.bisect_left(self.keys, prefix)
        return path == "." or (i < len(self.keys) and self.keys[i].startswith(prefix))

    def under(self, paths: Iterable[str]) -> list[TrackedFile]:
        """The files (sorted by path) at or below any of `paths`."""
        chosen: dict[str, TrackedFile] = {}
        for path in paths:
            if path == ".":
                return list(self.files)
            exact = self._by_path.get(path)
            if exact is not None:
                chosen[path] = exact
            prefix = path.rstrip("/") + "/"
            start = bisect.bisect_left(self.keys, prefix)
            end = bisect.bisect_left(self.keys, prefix[:-1] + "0")  # '0' sorts right after '/'
            chosen.update(zip(self.keys[start:end], self.files[start:end], strict=True))
        return [chosen[k] for k in sorted(chosen)]


def files_under(files: Sequence[TrackedFile], paths: Iterable[str]) -> list[TrackedFile]:
    """The files at or below any of `paths` (a one-off `FileIndex(files).under`)."""
    return FileIndex(files).under(paths)


def effective_build_args(
    spec: ComponentSpec, settings: BuildSettings, overrides: Mapping[str, str]
) -> dict[str, str]:
    """Global build args, then the component's, then the command line's."""
    return {**settings.build_args, **spec.build_args, **overrides}


def input_hash(
    spec: ComponentSpec, files: Iterable[TrackedFile], build_args: Mapping[str, str]
) -> str:
    """sha256 over tracked files, Dockerfile location, context and build args.

    The base image reference enters through the BASE_IMAGE build arg, or
    through the Dockerfile's own `ARG BASE_IMAGE=` default when none is given.
    """
    h = hashlib.sha256()
    h.update(HASH_VERSION + b"\0")
    h.update(f"dockerfile\0{spec.dockerfile}\ncontext\0{spec.context}\n".encode())
    for key in sorted(build_args):
        h.update(f"arg\0{key}\0{build_args[key]}\n".encode())
    for f in files:
        h.update(f"file\0{f.path}\0{f.mode}\0{f.blob}\n".encode())
    return h.hexdigest()


def ih_tag(digest_hex: str) -> str:
    return f"ih-{digest_hex[:IH_TAG_LENGTH]}"


def git_blob_id(content: bytes) -> str:
    """The id git gives a blob with this content, so dirty files hash like clean ones."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()
