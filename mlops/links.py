"""Symlinks among a build's inputs, resolved the way the image will see them.

Pure: it works on git's view of the repository (a `FileIndex` of every tracked
file, with work-tree edits folded in) and the text of each link. A link is
replaced by what it points to: a file link by the target's mode and blob, a
directory link by the target's files under the link's path. So the input hash
covers the target's content (a change of the target changes the hash), and
the build context holds that same content. A link that leaves the repository,
dangles or loops is refused, naming the link: its target is not something git
tracks, so no hash could cover it.

Links are resolved one path component at a time, as the kernel does, so a
`..` after a directory link climbs from the link's target, not from the link.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Iterable, Mapping

from mlops.errors import ConfigError
from mlops.records import dataclass
from mlops.tracked import FileIndex, TrackedFile

LINK_MODE = "120000"
MAX_HOPS = 40  # the kernel's limit on links followed for one path (ELOOP)


@dataclass(frozen=True)
class Resolved:
    """Files with every link replaced, and for each replacement the path it came from."""

    files: list[TrackedFile]
    sources: dict[str, str]  # path in the result -> path in the repository holding the content


def is_link(f: TrackedFile) -> bool:
    return f.mode == LINK_MODE


def resolve(files: Iterable[TrackedFile], repo: FileIndex, texts: Mapping[str, str]) -> Resolved:
    """`files` with each link replaced by the file(s) it points to, inside `repo`."""
    out: list[TrackedFile] = []
    sources: dict[str, str] = {}
    for f in files:
        if is_link(f):
            _expand(f.path, f.path, repo, texts, out, sources, depth=0)
        else:
            out.append(f)
    return Resolved(sorted(out), sources)


def _expand(at: str, link: str, repo: FileIndex, texts: Mapping[str, str],
            out: list[TrackedFile], sources: dict[str, str], depth: int,
            chain: tuple[str, ...] = ()) -> None:
    """Add what the link `link` points to, under the path `at` (where the image sees it).

    `chain` holds the folders being expanded around this one: meeting one again
    is a loop, which would otherwise grow without end.
    """
    if depth > MAX_HOPS:
        raise ConfigError(f"{at}: too many levels of symbolic links")
    target = real_path(link, repo, texts)
    entry = repo.get(target)
    if entry is not None:
        out.append(TrackedFile(at, entry.mode, entry.blob))
        sources[at] = target
        return
    if target == "" or target in chain or link.startswith(target + "/"):
        raise ConfigError(f"{link} is a symlink to {target or '.'}, a folder that contains "
                          "it (a loop)")
    for f in repo.under([target]):
        inner = at + f.path[len(target):]
        if is_link(f):
            _expand(inner, f.path, repo, texts, out, sources, depth + 1, (*chain, target))
        else:
            out.append(TrackedFile(inner, f.mode, f.blob))
            sources[inner] = f.path


def real_path(link: str, repo: FileIndex, texts: Mapping[str, str]) -> str:
    """The repo-relative path, free of links, that the link `link` points to."""
    stack = link.split("/")[:-1]  # a tracked entry's folders are folders, never links
    todo = deque(_components(link, texts[link]))
    hops = 0
    while todo:
        part = todo.popleft()
        if part == "..":
            if not stack:
                raise _outside(link, texts[link])
            stack.pop()
            continue
        stack.append(part)
        here = "/".join(stack)
        entry = repo.get(here)
        if entry is not None and is_link(entry):
            hops += 1
            if hops > MAX_HOPS:
                raise ConfigError(f"{link}: too many levels of symbolic links")
            stack.pop()
            todo.extendleft(reversed(_components(here, texts[here], origin=link,
                                                 origin_text=texts[link])))
    target = "/".join(stack)
    if target and repo.get(target) is None and not repo.has_dir(target):
        raise ConfigError(f"{link} is a symlink to {texts[link]}, which git does not track "
                          "(mlops builds from tracked files only)")
    return target


def _components(link: str, text: str, origin: str | None = None,
                origin_text: str | None = None) -> list[str]:
    if not text or posixpath.isabs(text):
        raise _outside(origin or link, origin_text if origin else text)
    return [p for p in text.split("/") if p not in ("", ".")]


def _outside(link: str, text: str | None) -> ConfigError:
    return ConfigError(f"{link} is a symlink to {text!r}, outside the repository; "
                       "mlops builds only what git tracks inside it")
