"""The tracked-file index: files as git sees them, and the blob id git gives content.

Pure, and below everything that reads it: `gitops` fills it from one
`git ls-files`, `inputs` hashes it, and `config` and `components` key their
parse cache by a file's blob id. Keeping it out of `inputs` lets those modules
import it at the top without `inputs` importing them back.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import NamedTuple


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


def git_blob_id(content: bytes) -> str:
    """The id git gives a blob with this content, so dirty files hash like clean ones."""
    import hashlib  # here: a dry run answered from its memo hashes nothing (_hashlib: ~3 ms)

    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()
