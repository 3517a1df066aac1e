"""Input hashing: what determines a component's image, as one sha256.

Pure: it works on the list of tracked files that `gitops` reads, so hashing
200 components costs one `git ls-files` and no file reads for clean files.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mlops.config import BuildSettings, ComponentSpec

HASH_VERSION = b"mlops-input-hash/v1"
IH_TAG_LENGTH = 20


@dataclass(frozen=True, order=True)
class TrackedFile:
    """One file as git sees it: repo-relative path, mode and blob id."""

    path: str
    mode: str
    blob: str


def files_under(files: Sequence[TrackedFile], paths: Iterable[str]) -> list[TrackedFile]:
    """The files (sorted by path) at or below any of `paths`; `files` must be sorted."""
    keys = [f.path for f in files]
    chosen: dict[str, TrackedFile] = {}
    for path in paths:
        if path == ".":
            return list(files)
        exact = bisect.bisect_left(keys, path)
        if exact < len(keys) and keys[exact] == path:
            chosen[path] = files[exact]
        prefix = path.rstrip("/") + "/"
        start = bisect.bisect_left(keys, prefix)
        end = bisect.bisect_left(keys, prefix[:-1] + "0")  # '0' sorts right after '/'
        for f in files[start:end]:
            chosen[f.path] = f
    return [chosen[k] for k in sorted(chosen)]


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
