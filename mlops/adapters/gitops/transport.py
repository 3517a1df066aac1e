"""Talking to the git remote: a timeout for stalled transfers, and bounded retries.

Every clone, fetch and push runs `git` with `http.lowSpeedLimit=1` and
`http.lowSpeedTime=MLOPS_GIT_TIMEOUT` (seconds, default 60): a remote that
sends less than a byte a second for that long is given up on instead of
hanging the command. A failure is retried (`MLOPS_GIT_RETRIES` attempts in
all, default 4, with the one backoff policy of `mlops.adapters.retry`) only when git's
own words say the network failed on the way: a refused, reset or timed-out
connection, an HTTP 5xx (or 408/429) answer, a transfer cut short. Anything
that would fail the same way again fails at once: an unknown host, a refused
login, a missing repository or branch, a bad certificate.

Git never prompts (`GIT_TERMINAL_PROMPT=0`): a CI job must fail, not wait for
a password. Its messages are read in the C locale, and every message that
leaves this module is redacted, so a token in the remote URL is never shown.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from mlops.adapters.retry import with_retries
from mlops.errors import ConfigError, GitError
from mlops.records import dataclass
from mlops.redact import redact

T = TypeVar("T")

# Would fail the same way again: checked first, so they win over a transient symptom
# printed beside them (e.g. "the remote end hung up unexpectedly"). Both are compiled
# (by re's cache) only when git fails: compiling them cost every command ~1 ms.
_PERMANENT = (
    r"could not resolve (host|proxy)|authentication failed|terminal prompts disabled|"
    r"could not read (username|password)|returned error: 4(?!08|29)\d\d|HTTP 4(?!08|29)\d\d|"
    r"\bnot found\b|does not appear to be a git repository|couldn't find remote ref|"
    r"certificate|permission denied|host key verification failed|"
    r"unsupported protocol|protocol '?[\w+-]+'? is not supported"
)
_TRANSIENT = (
    r"returned error: (5\d\d|408|429)|HTTP (5\d\d|408|429)|"
    r"connection refused|couldn't connect to server|failed to connect to|unable to connect to|"
    r"connection reset|connection timed out|operation timed out|operation too slow|timed out|"
    r"empty reply from server|RPC failed|early EOF|unexpected disconnect|"
    r"remote end hung up unexpectedly|recv failure|send failure|transfer closed with|"
    r"broken pipe|network is unreachable|no route to host|GnuTLS recv error|SSL_ERROR_SYSCALL|"
    r"TLS connection was non-properly terminated|unexpected eof while reading|"
    r"HTTP/2 stream \d+ was not closed cleanly"
)


def is_transient(stderr: str) -> bool:
    """Whether git's error output describes a network failure worth another try."""
    return (not re.search(_PERMANENT, stderr, re.IGNORECASE)
            and bool(re.search(_TRANSIENT, stderr, re.IGNORECASE)))


class TransientGitError(GitError):
    """The network failed on the way to the remote: worth another attempt."""


@dataclass(frozen=True)
class TransportPolicy:
    attempts: int = 4
    timeout: int = 60  # seconds below one byte a second before git gives up
    initial: float = 0.2
    max_wait: float = 4.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TransportPolicy:
        """`MLOPS_GIT_RETRIES` (attempts in all) and `MLOPS_GIT_TIMEOUT` (seconds) tune it."""
        env = os.environ if environ is None else environ
        attempts = _number(env, "MLOPS_GIT_RETRIES", cls.attempts, whole=True)
        timeout = _number(env, "MLOPS_GIT_TIMEOUT", cls.timeout, whole=False)
        # git takes whole seconds; round up so a small timeout never becomes none.
        return cls(attempts=int(attempts), timeout=max(1, math.ceil(timeout)))

    def config_args(self) -> list[str]:
        return ["-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={self.timeout}"]


def _number(env: Mapping[str, str], name: str, default: float, whole: bool) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = -1
    if not (value >= 1 and math.isfinite(value)):
        kind = "a whole number" if whole else "a number of seconds"
        raise ConfigError(f"${name} must be {kind} >= 1, not {raw[:40]!r}")
    return value


def run(cwd: Path, args: Sequence[str], policy: TransportPolicy) -> subprocess.CompletedProcess:
    """`git ARGS` against a remote, with the timeout, no prompts and English messages."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": ""}
    try:
        return subprocess.run(["git", *policy.config_args(), *args], cwd=cwd, env=env,
                              capture_output=True, text=True, encoding="utf-8",
                              errors="surrogateescape", check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None


def failure(what: str, stderr: str) -> GitError:
    """`what: git's reason`, redacted; a TransientGitError when another try may work.
    The credentials of a URL in `what` are masked in git's reason too: a server's
    `remote:` lines may repeat the token they were sent, bare."""
    cls = TransientGitError if is_transient(stderr) else GitError
    return cls(f"{redact(what)}: {reason(stderr, _url_credentials(what))}")


_USERINFO = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/@\s]+)@")


def _url_credentials(text: str) -> set[str]:
    """The user and password parts (as written, and decoded) of URLs in `text`."""
    from urllib.parse import unquote

    parts = {p for m in _USERINFO.finditer(text) for p in m.group(1).split(":", 1)}
    return {v for p in parts for v in (p, unquote(p))}


_NOISE = re.compile(r"^(fatal|error): (unable to access '[^']*': )?")


def reason(text: str, secrets: Iterable[str] = ()) -> str:
    """The informative line of git's stderr: not a hint, and without git's own prefixes;
    redacted, `secrets` masked wherever they appear."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("hint:")]
    first = (useful or lines or ["unknown error"])[0]
    return redact(_NOISE.sub("", first) or first, secrets)[:300]


def retrying(fn: Callable[[], T], policy: TransportPolicy,
             note: Callable[[str], None] | None = None) -> T:
    """`fn()`, again while it raises TransientGitError, `policy.attempts` times in all."""

    def on_retry(attempt: int, exc: BaseException) -> None:
        if note is not None:
            note(f"mlops: {exc}; retrying (attempt {attempt + 1} of {policy.attempts})")

    try:
        return with_retries(fn, lambda exc: isinstance(exc, TransientGitError),
                            attempts=policy.attempts, initial=policy.initial,
                            max_wait=policy.max_wait, on_retry=on_retry)
    except TransientGitError as exc:
        tries = f"{policy.attempts} attempts" if policy.attempts > 1 else "1 attempt"
        raise GitError(f"{exc.message} (gave up after {tries})") from None
