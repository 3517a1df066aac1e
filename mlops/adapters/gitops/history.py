"""The remote branch's history, read without a clone: one `git fetch`, then `git log`.

The branch is fetched from the remote URL into a private ref of the user's
clone, `refs/mlops/remote/<branch>`: no branch, remote-tracking ref, index or
work tree changes, nothing is written to FETCH_HEAD (the URL may hold a
token), and the next run fetches only what is new. A shallow clone has no
history to add to, so its fetch goes to a temporary bare repository instead.

The log is read newest first with one trailer format, in batches that stop as
soon as `limit` commits are kept; each commit's trailers are parsed once. When
the clone already holds the private ref, the first batch is read from it while
the fetch runs, and kept only if the fetch left the ref where it was (the
usual case: nobody promoted since the last look).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

from mlops.adapters.gitops import literal_paths, logformat, transport
from mlops.adapters.gitops.transport import TransientGitError
from mlops.errors import GitError
from mlops.records import dataclass, field
from mlops.redact import redact

T = TypeVar("T")
PRIVATE_REFS = "refs/mlops/remote/"
TMP_PREFIX = "mlops-history-"
FIRST_BATCH = 64  # commits read before the first look at what was kept
_FETCH = ["-c", "core.logAllRefUpdates=false", "fetch", "--quiet", "--no-tags",
          "--no-write-fetch-head", "--no-recurse-submodules", "--no-auto-gc"]


@dataclass(frozen=True)
class Grep:
    """What a kept commit's message must hold, so that git skips the rest: every
    pattern, case-insensitively, matched against each line; fixed strings (git's
    quickest matcher) or extended regexes."""

    patterns: tuple[str, ...] = ()
    fixed: bool = False

    def args(self) -> list[str]:
        if not self.patterns:
            return []
        return [*(f"--grep={p}" for p in self.patterns), "--all-match",
                "--regexp-ignore-case", "--fixed-strings" if self.fixed else "--extended-regexp"]


EVERY = Grep()  # no filter: every commit reaches `pick`


@dataclass(frozen=True)
class LogEntry:
    """One commit: its trailers by lower-cased key, values in the order written."""

    sha: str
    time: int | None  # None: a date git cannot print (see logformat)
    subject: str
    trailers: dict[str, list[str]] = field(default_factory=dict)

    def first(self, key: str) -> str | None:
        values = self.trailers.get(key.lower())
        return values[0] if values else None


def read_remote(root: Path, url: str | Callable[[], str], branch: str,
                pick: Callable[[LogEntry], T | None], limit: int, grep: Grep = EVERY,
                note: Callable[[str], None] | None = None) -> list[T]:
    """What `pick` makes of the newest `limit` commits of the remote `branch` it
    does not turn down, as the remote holds them now (see `read_log`).

    `url` may be a function that finds it (a git process of its own): it is asked
    once, when git already reads the log of the commit held, if there is one."""
    ref = PRIVATE_REFS + branch
    held = _held(root, ref)
    if held is None:
        return _read_fetched(root, url if isinstance(url, str) else url(), branch, ref,
                             pick, limit, grep, note)
    early = _start_early(root, held, limit, grep, url)
    try:
        found = url if isinstance(url, str) else url()
    except BaseException:
        early.discard()
        raise
    fetching = _Fetching(lambda: _fetch(root, found, branch, ref, note))
    try:
        kept = read_log(root, held, pick, limit, grep, early)
    finally:
        early.discard()
        fetching.wait()  # raises what the fetch raised
    now = _loose_ref(root, ref)
    if now == held:
        return kept
    return read_log(root, now or ref, pick, limit, grep)  # something new since the last look


def _held(root: Path, ref: str) -> str | None:
    """The commit the clone holds at `ref` when it can be read at once (a loose ref of
    a `.git` directory that is not shallow), else None."""
    if not (root / ".git").is_dir() or _is_shallow(root):
        return None
    return _loose_ref(root, ref)


def _start_early(root: Path, held: str, limit: int, grep: Grep,
                 url: str | Callable[[], str]) -> _Batch:
    """The first batch of the log of `held`, started before the URL is known; when it
    cannot start, what finding the URL raises comes first, as when it came first."""
    try:
        return _start_batch(root, held, 0, _first_batch(limit), grep)
    except BaseException:
        if not isinstance(url, str):
            url()
        raise


def _read_fetched(root: Path, url: str, branch: str, ref: str,
                  pick: Callable[[LogEntry], T | None], limit: int, grep: Grep,
                  note: Callable[[str], None] | None) -> list[T]:
    """The log once fetched: of a temporary repository for a shallow clone, else of the
    clone's private ref."""
    if _is_shallow(root):
        with _scratch_repository() as scratch:
            _fetch(scratch, url, branch, ref, note)
            return read_log(scratch, ref, pick, limit, grep)
    _fetch(root, url, branch, ref, note)
    return read_log(root, _loose_ref(root, ref) or ref, pick, limit, grep)


class _Fetching:
    """The fetch on a thread of its own (the time goes to the `git` child) while
    this one reads and parses the log of the commit held before it."""

    def __init__(self, fetch: Callable[[], None]) -> None:
        self._error: BaseException | None = None
        self._fetch = fetch
        self._thread = threading.Thread(target=self._run, name="mlops-history-fetch",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._fetch()
        except BaseException as e:  # handed to the waiting thread
            self._error = e

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextmanager
def _scratch_repository() -> Iterator[Path]:
    """A shallow clone has no history to add to: its fetch goes to a temporary bare
    repository instead."""
    scratch = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
    try:
        _git(scratch, "init", "--quiet", "--bare")
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_log(repo: Path, ref: str, pick: Callable[[LogEntry], T | None], limit: int,
             grep: Grep = EVERY, first: _Batch | None = None) -> list[T]:
    """What `pick` makes of the newest `limit` commits of `ref` it does not turn
    down (None), newest first.

    `grep` lets git skip commits that cannot be kept; `pick` has the last word.
    `first`, when given, is the first batch already started on `ref`.
    """
    kept: list[T] = []
    skip, batch = 0, _first_batch(limit)
    while len(kept) < limit:
        proc = first or _start_batch(repo, ref, skip, batch, grep)
        first = None
        try:
            seen = proc.read(pick, kept)
        finally:
            proc.discard()  # nothing once read to its end; else git is stopped, files closed
        if seen < batch:
            break
        skip, batch = skip + batch, batch * 2
    return kept[:limit]


def _first_batch(limit: int) -> int:
    return max(limit, FIRST_BATCH)


def _start_batch(repo: Path, ref: str, skip: int, count: int,
                 grep: Grep) -> _Batch:
    filters = grep.args()
    args = ["git", "--no-replace-objects", "log", "--no-show-signature", "--encoding=UTF-8",
            *logformat.ARGS, f"--skip={skip}", f"--max-count={count}", *filters, ref, "--"]
    # stderr to a file: stdout is read as it comes, and a full stderr pipe would
    # block git while this waits on stdout.
    errors = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(args, cwd=repo, stdout=subprocess.PIPE, stderr=errors,
                                bufsize=0, env=_git_env())
    except FileNotFoundError:
        errors.close()
        raise GitError("git is not installed") from None
    return _Batch(proc, errors)


@dataclass
class _Batch:
    """One running `git log`."""

    proc: subprocess.Popen[bytes]
    errors: IO[bytes]

    def read(self, pick: Callable[[LogEntry], T | None], kept: list[T]) -> int:
        """Each entry parsed and picked as soon as git has printed it (git formats
        the next ones on the other core meanwhile), what is picked added to `kept`;
        how many entries there were."""
        assert self.proc.stdout is not None
        out, seen, tail = self.proc.stdout.fileno(), 0, b""
        while chunk := os.read(out, 1 << 16):
            *records, tail = (tail + chunk).split(b"\0")
            seen += _pick(records, pick, kept)
        seen += _pick([tail], pick, kept)
        if self.proc.wait() != 0:
            self.errors.seek(0)
            reason = transport.reason(self.errors.read().decode(errors="replace"))
            self.discard()
            raise GitError(f"git log failed: {reason}")
        self.discard()
        return seen

    def discard(self) -> None:
        """Stop git if it still runs, and close what it wrote to."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()

    @property
    def done(self) -> bool:
        return self.proc.returncode is not None and self.errors.closed


def _pick(records: list[bytes], pick: Callable[[LogEntry], T | None], kept: list[T]) -> int:
    seen = 0
    for record in records:
        if record:
            seen += 1
            if (picked := pick(parse_entry(record.decode("utf-8", "surrogateescape")))) \
                    is not None:
                kept.append(picked)
    return seen


def _loose_ref(root: Path, ref: str) -> str | None:
    """The commit `ref` names when it is a loose ref file of the clone, else None (a
    packed ref, a worktree's `.git` file, another ref store: git resolves those)."""
    try:
        sha = (root / ".git" / ref).read_bytes().strip().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    return sha if logformat.OBJECT_ID.fullmatch(sha) else None


def parse_entry(record: str) -> LogEntry:
    """One commit of the log (`logformat`), its trailers gathered by lower-cased key.

    `logformat.trailer_pairs`, written out here: a history reads hundreds of
    commits of a dozen trailers each, and their keys are a few, written alike."""
    lines = logformat.split(record)  # no LogRecord on the way
    trailers: dict[str, list[str]] = {}
    for line in lines[3:]:
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if (name := _NAMES.get(key)) is None:
            name = _name(key)
        if name:
            if (values := trailers.get(name)) is None:
                trailers[name] = [value.strip()]
            else:
                values.append(value.strip())
    return LogEntry(lines[0], logformat.seconds_of(lines[1]), lines[2], trailers)


_NAMES: dict[str, str] = {}  # a key as written -> as LogEntry holds it ("": no trailer)
_MAX_NAMES = 4096  # a pusher may write any number of keys: keep the first few only


def _name(key: str) -> str:
    name = key.strip().lower()
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[key] = name
    return name


def _fetch(repo: Path, url: str, branch: str, ref: str,
           note: Callable[[str], None] | None) -> None:
    policy = transport.TransportPolicy.from_env()
    refspec = f"+refs/heads/{branch}:{ref}"

    def once() -> None:
        proc = transport.run(repo, [*_FETCH, "--", url, refspec], policy)
        if proc.returncode == 0:
            return
        if "couldn't find remote ref" in proc.stderr.lower():
            raise GitError(f"remote {redact(url)} has no branch {branch!r}")
        if "cannot lock ref" in proc.stderr.lower():  # another `mlops history` is fetching
            raise TransientGitError(f"cannot update {ref}: {transport.reason(proc.stderr)}")
        raise transport.failure(f"git fetch from {url} failed", proc.stderr)

    transport.retrying(once, policy, note)


def _is_shallow(root: Path) -> bool:
    if (root / ".git").is_dir():  # the common case, without a process
        return (root / ".git" / "shallow").exists()
    return _git(root, "rev-parse", "--is-shallow-repository").strip() == "true"


def _git(cwd: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              encoding="utf-8", errors="surrogateescape", env=_git_env())
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if proc.returncode != 0:
        verb = next(a for a in args if not a.startswith("-"))
        raise GitError(f"git {verb} failed: {transport.reason(proc.stderr)}")
    return proc.stdout


def _git_env() -> dict[str, str]:
    # The C locale: git's case-insensitive `--grep` takes two thirds of the time it
    # takes under a UTF-8 locale (8 ms against 12 over 500 promotions). The patterns
    # are ASCII, and --encoding fixes what the log prints.
    # GIT_FLUSH=0: git log fills its output buffer before writing, instead of flushing
    # each commit to the pipe (its choice for a pipe): the same bytes in a tenth of the
    # writes, and of this process's wake-ups to read them (over 500 commits, 1.4 ms
    # less of this process's time and 2.5 ms less until the last commit is read).
    return {**literal_paths(), "LC_ALL": "C", "GIT_FLUSH": "0"}
