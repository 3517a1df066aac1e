"""Commits as `git log -z --format=FORMAT` prints them, read whatever their messages hold.

Each field is a line of its own: git folds a subject onto one line and unfolds
each trailer onto one, and it cuts a message at its first NUL, so neither a
newline nor a NUL can come from a message into a field. (Separator bytes such
as \\x1e and \\x1f can: a pusher's subject holding them once ended `mlops
history` in a traceback, or read as a commit that does not exist.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mlops.errors import GitError
from mlops.records import dataclass

FORMAT = "%H%n%ct%n%s%n%(trailers:unfold,only)"
ARGS = ("-z", f"--format={FORMAT}")
OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # sha-1 or sha-256
# git's dates are 64-bit; a committer can write anything (an empty %ct, 400 digits)
_SECONDS = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True)
class LogRecord:
    sha: str
    time: int | None  # None: a date git cannot print or a 64-bit integer cannot hold
    subject: str
    trailers: tuple[tuple[str, str], ...]  # (key, value), in the order written


def records(out: str) -> list[LogRecord]:
    """Every commit of a whole `git log` output (ARGS), newest first."""
    return [parse(record) for record in out.split("\0") if record]


def parse(record: str) -> LogRecord:
    lines = split(record)
    return LogRecord(lines[0], seconds_of(lines[1]), lines[2], tuple(trailer_pairs(lines[3:])))


def split(record: str) -> list[str]:
    """A record's lines: object id, date, subject, then its trailers, one a line."""
    lines = record.split("\n")  # not splitlines: a subject may hold \x1c-\x1e, \x85, ...
    if len(lines) < 3 or not OBJECT_ID.fullmatch(lines[0]):
        raise GitError(f"git log printed what mlops cannot read: {record[:80]!r}")
    return lines


def trailer_pairs(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(key, value) of each `Key: value` line, both stripped, in the order written."""
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and (key := key.strip()):
            yield key, value.strip()


def seconds_of(printed: str) -> int | None:
    """A commit date as git's %ct prints it, or None when it is no 64-bit number."""
    return int(printed) if _SECONDS.fullmatch(printed) else None
