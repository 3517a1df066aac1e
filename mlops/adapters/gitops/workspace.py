"""An isolated clone of the remote branch, where promotions are made and pushed.

Nothing here touches the user's working tree: each promotion clones the
remote branch into a temporary directory (borrowing objects from the user's
clone to stay fast, and checking out only what commands read: see
`SPARSE_CHECKOUT`), commits there, and pushes. A push is atomic on the
remote, so a promotion killed at any moment leaves the remote at the old or
the new commit, never between.

Clones, fetches and pushes go through `transport`: a stalled remote times
out, and a network failure on the way is retried (bounded). A push whose
answer was lost may still have landed; the retry finds that out instead of
making the change twice (see `Workspace.push`).

Everything runs the `git` executable: GitPython cost ~60 ms of imports in every
promotion, for calls that are one process each anyway.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mlops.adapters import sshsig
from mlops.adapters.gitops import (  # noqa: F401 - remote_url: re-exported
    literal_paths,
    logformat,
    remote_url,
    transport,
)
from mlops.adapters.gitops.transport import TransientGitError
from mlops.errors import ConfigError, GitError
from mlops.records import dataclass
from mlops.redact import redact

TMP_PREFIX = "mlops-workspace-"
_REJECTED = re.compile(
    r"\[rejected\]|non-fast-forward|fetch first|cannot lock ref|failed to update ref|"
    r"stale info|incorrect old value",
    re.IGNORECASE,
)
_GOOD_SIGNATURE = re.compile(r'Good "git" signature for (\S+) with')
FALLBACK_IDENTITY = {"name": "mlops", "email": "mlops@localhost"}
_MISSING_BRANCH = re.compile(r"Remote branch .* not found", re.IGNORECASE)
_FULL_ID = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64}):")
_PUSHED_REF = "refs/mlops/pushed"  # where a push that lost its answer is looked for
# What a workspace checks out (git's non-cone sparse patterns): everything but the
# folders components/<name>/, which no command reads in a workspace (the index says
# which of them hold a component.yaml: services.checkout). At 1,000 components,
# creating and removing those folders was a third of a promotion.
SPARSE_CHECKOUT = "/*\n!/components/*/\n"


class PushRejected(GitError):
    """The remote moved on: fetch, recompute and try again."""


@dataclass(frozen=True)
class Commit(logformat.LogRecord):
    def trailer(self, key: str) -> str | None:
        for k, v in self.trailers:
            if k.lower() == key.lower():
                return v
        return None

    def trailer_all(self, key: str) -> list[str]:
        return [v for k, v in self.trailers if k.lower() == key.lower()]


def check_clean_branch(root: Path) -> str:
    """The checked-out branch; refuse a detached HEAD or uncommitted tracked changes."""
    branch = _local(root, "symbolic-ref", "-q", "--short", "HEAD")
    if branch.returncode != 0:
        raise GitError(f"{root}: HEAD is detached; check out a branch first")
    if _local(root, "status", "--porcelain", "--untracked-files=no", check=True).stdout.strip():
        raise GitError(f"{root}: has uncommitted changes; commit or stash them first")
    return branch.stdout.strip()


def identity(root: Path) -> dict[str, str]:
    """Who commits: the user's git identity, else a neutral fallback."""
    found = _user_settings(root)
    name = found.get("user.name") or os.environ.get("GIT_AUTHOR_NAME")
    email = found.get("user.email") or os.environ.get("GIT_AUTHOR_EMAIL")
    return {
        "name": str(name or FALLBACK_IDENTITY["name"]),
        "email": str(email or FALLBACK_IDENTITY["email"]),
    }


def signing_key(root: Path) -> Path | None:
    """git's user.signingkey for this repository, if set."""
    value = _config(root, "user.signingkey")
    return Path(value) if value else None


def _user_settings(root: Path) -> dict[str, str]:
    """user.name and user.email as git sees them in `root`, read in one process.

    `-z` ends each entry with NUL and puts a newline between key and value, so a
    value cannot pass for a key; of repeated keys the last wins, as in git.
    """
    out = _local(root, "config", "-z", "--get-regexp", r"^user\.(name|email)$").stdout
    found = {}
    for entry in out.split("\0"):
        key, _, value = entry.partition("\n")
        if key:
            found[key.lower()] = value.strip()
    return found


def _config(root: Path, key: str) -> str:
    """A setting as git sees it in `root` (repository, global, system), or ''."""
    return _local(root, "config", "--get", key).stdout.strip()


def _local(root: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`git ARGS` in a repository on this machine: no network, English messages."""
    if not (root / ".git").exists():
        raise GitError(f"{root}: not a git repository")
    try:
        proc = subprocess.run(["git", *args], cwd=root,
                              env={**literal_paths(), "LC_ALL": "C"},
                              capture_output=True, text=True, encoding="utf-8",
                              errors="surrogateescape", check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if check and proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {transport.reason(proc.stderr)}")
    return proc


class Workspace:
    """`with Workspace(url, branch, reference=root) as ws:` -> a clone in a temp dir."""

    def __init__(self, url: str, branch: str, reference: Path | None = None,
                 who: Mapping[str, str] | None = None,
                 note: Callable[[str], None] | None = None) -> None:
        self.url = url
        self.branch = branch
        self.reference = reference
        self.who = dict(who or FALLBACK_IDENTITY)
        self.note = note  # told about each retry of a network failure
        self.policy = transport.TransportPolicy.from_env()
        _sweep_stale_workspaces()
        self.path = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
        # Bumped whenever HEAD may move (commit, refresh): what was read at one HEAD
        # may be reused until then (`mlops.trustroot.resolve`).
        self.generation = 0
        self.root = self.path / "repo"
        self._shown: dict[str, bytes | None] = {}  # "<commit id>:<path>" -> its blob
        self._keygen = _keygen()  # before any code from the branch runs: `verify_commit`

    def __enter__(self) -> Workspace:
        try:
            self._clone()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    # -- reading ------------------------------------------------------------

    def head(self) -> str:
        return self._run("rev-parse", "HEAD").strip()

    def uncommitted(self) -> str:
        """`git diff` of the work tree, then a `new file:` line per untracked file."""
        diff = self._run("diff", "--no-color")
        untracked = self._run("ls-files", "--others", "--exclude-standard")
        return diff + "".join(f"new file: {p}\n" for p in untracked.splitlines())

    def show(self, rev: str, path: str) -> str | None:
        try:
            return self._run("show", f"{rev}:{path}")
        except GitError:
            return None

    def log(self, paths: Sequence[str] = ()) -> list[Commit]:
        """Newest first, with each commit's trailers."""
        out = self._run("log", "--no-show-signature", *logformat.ARGS, "HEAD", "--", *paths)
        return [Commit(r.sha, r.time, r.subject, r.trailers) for r in logformat.records(out)]

    def changed(self, path: str) -> list[str]:
        """Newest first: every commit on HEAD's history, on any parent, that changed `path`
        (no history simplification: a merge cannot hide a side branch's change)."""
        return self._run("log", "--no-show-signature", "--full-history", "--format=%H",
                         "HEAD", "--", path).split()

    def first_parent_commits(self, paths: Sequence[str]) -> list[str]:
        """Oldest first: the commits on HEAD's first-parent line that changed `paths`."""
        out = self._run("log", "--no-show-signature", "--first-parent", "--reverse",
                        "--format=%H", "HEAD", "--",
                        *paths)
        return out.split()

    def history(self, paths: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
        """(commit, parents) oldest first, on every parent: the commits that changed
        `paths`, and every merge, parents rewritten to the nearest such commit."""
        out = self._run("rev-list", "--full-history", "--parents", "--topo-order",
                        "--reverse", "HEAD", "--", *paths)
        return [(shas[0], tuple(shas[1:])) for line in out.splitlines()
                if (shas := line.split())]

    def raw_commit(self, sha: str) -> tuple[str, list[str], str]:
        """(tree, parents, message) of a commit, as git stores it."""
        raw = self._run("cat-file", "commit", sha)
        header, _, message = raw.partition("\n\n")
        fields = [line.split(" ", 1) for line in header.splitlines()
                  if not line.startswith(" ")]
        tree = next((value for key, value in fields if key == "tree"), "")
        return tree, [value for key, value in fields if key == "parent"], message

    def tree_of(self, commit: str) -> str:
        return self._run("rev-parse", "--verify", f"{commit}^{{tree}}").strip()

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether commit `older` is `newer` or one of its ancestors, on any parent."""
        self._refuse_rewired_history()
        proc = subprocess.run(["git", "merge-base", "--is-ancestor", older, newer],
                              cwd=self.root, capture_output=True, text=True, encoding="utf-8",
                              errors="surrogateescape", env=_read_as_stored())
        if proc.returncode not in (0, 1):  # 1 is "no"; anything else is trouble
            raise GitError(f"git merge-base failed: {transport.reason(proc.stderr)}")
        return proc.returncode == 0

    def show_many(self, specs: Sequence[str]) -> list[bytes | None]:
        """`git show REV:PATH` for each spec in one `git cat-file --batch`; None if absent.

        What a full commit id names never changes, so the blobs found that way are
        kept for the workspace's life: the trust root reads the same commits' files
        twice. (An absent file is asked again: it may be an object not fetched.)
        """
        wanted = [s for s in dict.fromkeys(specs) if s not in self._shown]
        if wanted:
            self._refuse_rewired_history()
            proc = subprocess.run(["git", "cat-file", "--batch"], cwd=self.root,
                                  input="".join(f"{s}\n" for s in wanted).encode(),
                                  capture_output=True, env=_read_as_stored())
            if proc.returncode != 0:
                raise GitError(f"git cat-file failed: {transport.reason(proc.stderr.decode())}")
            answers = _batch_objects(proc.stdout, len(wanted))
            found = {spec: blob for spec, (_, blob) in zip(wanted, answers, strict=True)}
            self._shown.update((spec, blob) for spec, (oid, blob) in zip(wanted, answers,
                                                                          strict=True)
                               if blob is not None and _names_an_object(spec, oid))
        else:
            found = {}
        return [self._shown[s] if s in self._shown else found[s] for s in specs]

    def verify_commit(self, sha: str, allowed_signers: Path) -> tuple[str | None, str]:
        """(principal, detail): who signed, if git verifies the commit; else None and why.

        Pipeline code from the branch runs in this clone before approvals are
        checked (`compile`), and may have rewritten its `.git/config`. So every
        setting the check depends on is given on the command line, which wins over
        any file: the ssh-keygen found before that code ran, the trusted signers,
        and no program at all for OpenPGP or X.509 signatures (`/dev/null` cannot
        be run), whose output could otherwise imitate ssh-keygen's verdict.

        git has ssh-keygen judge the key at the commit's own committer date
        (`-Overify-time=`, gpg-interface.c), which whoever signs writes: the file
        given must hold no valid-after/valid-before or cert-authority lines
        (`mlops.trust.in_force` judges those at the time of the check).
        """
        if self._keygen is None:
            return None, "ssh-keygen not found on PATH; install OpenSSH (8.2 or newer)"
        pinned = {"gpg.format": "ssh", "gpg.ssh.program": self._keygen,
                  "gpg.ssh.allowedSignersFile": str(allowed_signers),
                  "gpg.program": os.devnull,
                  "gpg.openpgp.program": os.devnull, "gpg.x509.program": os.devnull,
                  "core.hooksPath": os.devnull, "core.fsmonitor": "false"}
        options = [arg for key, value in pinned.items() for arg in ("-c", f"{key}={value}")]
        proc = _local(self.root, "--no-replace-objects", *options, "verify-commit", sha)
        text = proc.stderr
        match = _GOOD_SIGNATURE.search(text)
        if proc.returncode == 0 and match:
            return match.group(1), "good signature"
        return None, _last_line(text) or "no signature"

    # -- writing ------------------------------------------------------------

    def commit(self, message: str, allow_empty: bool = False,
               signing_key: Path | None = None) -> str:
        self._run("add", "-A")
        args = ["-c", f"user.name={self.who['name']}", "-c", f"user.email={self.who['email']}"]
        if signing_key is not None:
            args += ["-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key}"]
        cmd = [*args, "commit", "-q", "--no-verify", "-F", "-"]
        if allow_empty:
            cmd.append("--allow-empty")
        if signing_key is not None:
            cmd.append("-S")
        # A workspace lives for one command: git's automatic upkeep would be wasted.
        self.generation += 1
        self._run("-c", "maintenance.auto=false", "-c", "gc.auto=0", *cmd, stdin=message)
        return self.head()

    def push(self, target_ref: str | None = None, sha: str | None = None) -> None:
        """Push HEAD; PushRejected when the remote moved on.

        A network failure is retried. When one came between us and the answer,
        the push may have landed anyway: a retry then finds the ref up to date,
        or, if someone pushed on top meanwhile, rejected. A rejection is checked
        against the remote ref: if our commit is in it, the push is done, and
        nothing is recomputed (which would make the change a second time).
        """
        ref = target_ref or f"refs/heads/{self.branch}"
        sha = sha or self.head()  # the commit `commit` returned, or HEAD
        interrupted = False

        def once() -> None:
            nonlocal interrupted
            try:
                self._push_once(ref)
            except PushRejected:
                if interrupted and self._landed(sha, ref):
                    return
                raise
            except TransientGitError:
                interrupted = True
                raise

        transport.retrying(once, self.policy, self.note)

    def refresh(self) -> None:
        """Drop local work and move to the remote branch's newest commit."""
        self.generation += 1
        self._fetch(f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        self._run("reset", "-q", "--hard", f"origin/{self.branch}")
        self._run("clean", "-qfdx")

    # -- plumbing -----------------------------------------------------------

    def _clone(self) -> None:
        dest = self.root
        options = ["--quiet", "--no-tags", "--single-branch", "--branch", self.branch,
                   "--no-checkout", "--config", "core.sparseCheckout=true"]
        if self.reference is not None and (self.reference / ".git").is_dir():
            options += ["--reference-if-able", str(self.reference)]

        def once() -> None:
            shutil.rmtree(dest, ignore_errors=True)  # what a failed attempt left
            proc = transport.run(self.path, ["clone", *options, "--", self.url, str(dest)],
                                 self.policy)
            if proc.returncode == 0:
                return
            if _MISSING_BRANCH.search(proc.stderr):
                raise GitError(f"remote {redact(self.url)} has no branch {self.branch!r}")
            raise transport.failure(f"cannot clone {self.url}", proc.stderr)

        transport.retrying(once, self.policy, self.note)
        self._checkout_sparse()

    def _checkout_sparse(self) -> None:
        """Check out all but the component folders (`SPARSE_CHECKOUT`)."""
        info = self.root / ".git" / "info"
        info.mkdir(exist_ok=True)
        (info / "sparse-checkout").write_text(SPARSE_CHECKOUT)  # core.sparseCheckout: clone
        self._run("read-tree", "-mu", "HEAD")

    def _push_once(self, ref: str) -> None:
        proc = transport.run(self.root, ["push", "--porcelain", "origin", f"HEAD:{ref}"],
                             self.policy)
        if proc.returncode == 0:
            return
        if _REJECTED.search(f"{proc.stdout}\n{proc.stderr}"):  # --porcelain: the ref's fate
            raise PushRejected(f"push to {ref} rejected: the remote moved on")
        raise transport.failure(f"git push to {self.url} failed", proc.stderr)

    def _landed(self, sha: str, ref: str) -> bool:
        """Whether the remote `ref` already holds `sha` (a push whose answer was lost)."""
        self._fetch(f"+{ref}:{_PUSHED_REF}")
        proc = transport.run(self.root, ["merge-base", "--is-ancestor", sha, _PUSHED_REF],
                             self.policy)
        return proc.returncode == 0

    def _fetch(self, refspec: str) -> None:
        def once() -> None:
            # --no-auto-gc: a throwaway clone gains nothing from maintenance, and
            # the process git would start for it only delays the retry.
            proc = transport.run(self.root, ["fetch", "-q", "--no-tags", "--no-auto-gc",
                                             "--no-write-fetch-head", "origin", refspec],
                                 self.policy)
            if proc.returncode != 0:
                raise transport.failure(f"git fetch from {self.url} failed", proc.stderr)

        transport.retrying(once, self.policy, self.note)

    def _run(self, *args: str, stdin: str | None = None) -> str:
        """`git ARGS` in the clone (no network): its output, or GitError with git's reason."""
        self._refuse_rewired_history()
        proc = subprocess.run(["git", *args], cwd=self.root, input=stdin, text=True,
                              encoding="utf-8", errors="surrogateescape", capture_output=True,
                              env=_read_as_stored())
        if proc.returncode != 0:
            what = next((a for a in args if not a.startswith("-") and "=" not in a), "")
            raise GitError(f"git {what} failed: "
                           f"{redact(transport.reason(proc.stderr)) or proc.returncode}")
        return proc.stdout


    def _refuse_rewired_history(self) -> None:
        """A shallow file or grafts make git read a history other than the one stored.

        This clone is never shallow, so either one was written by code from the
        branch (a pipeline compiled in it): refuse rather than read that history.
        Replace refs are ignored outright (`_read_as_stored`).
        """
        git_dir = self.root / ".git"
        for name in ("shallow", "info/grafts"):
            if (git_dir / name).exists():
                raise GitError(f"the workspace clone's .git/{name} appeared after it was "
                               "cloned (written by the branch's pipeline code?); refusing "
                               "to read its history")


def _read_as_stored() -> dict[str, str]:
    """Every read in a workspace sees objects as stored: no replace refs (which pipeline
    code could plant to make one commit read as another), and paths as written (a path
    from the branch's mlops.yaml such as `:!*ml*` must not become an exclude pattern)."""
    env = {**literal_paths(), "LC_ALL": "C", "GIT_NO_REPLACE_OBJECTS": "1"}
    # Nor a commit-graph file, which git trusts for parents and which the alternates the
    # clone borrows objects from (the user's clone) could hold, written by earlier code.
    given = env.get("GIT_CONFIG_COUNT", "0")
    count = int(given) if given.isdigit() else 0  # settings the caller gave git are kept
    env.update({"GIT_CONFIG_COUNT": str(count + 1), f"GIT_CONFIG_KEY_{count}": "core.commitGraph",
                f"GIT_CONFIG_VALUE_{count}": "false"})
    return env


def _keygen() -> str | None:
    try:
        return sshsig.keygen()
    except ConfigError:
        return None


STALE_AFTER = 3600.0


def _sweep_stale_workspaces() -> None:
    """Remove workspaces that a killed promotion left behind over an hour ago."""
    import time

    cutoff = time.time() - STALE_AFTER
    for old in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        try:
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue  # another process is removing it


def _names_an_object(spec: str, oid: str) -> bool:
    """Whether `spec` starts with a whole object id of this repository (as long as the
    found blob's id), so that its answer can never change; a ref name cannot be that."""
    match = _FULL_ID.match(spec)
    return match is not None and len(match.group(1)) == len(oid)


def _batch_objects(out: bytes, count: int) -> list[tuple[str, bytes | None]]:
    """(the object id, the blob or None) per answer of `git cat-file --batch`."""
    found: list[tuple[str, bytes | None]] = []
    pos = 0
    for _ in range(count):
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3 or header[1] != b"blob":  # "<spec> missing", or a tree
            found.append((header[0].decode(errors="replace") if header else "", None))
            if len(header) == 3:
                pos += int(header[2]) + 1
            continue
        size = int(header[2])
        found.append((header[0].decode(), out[pos:pos + size]))
        pos += size + 1
    return found


def _last_line(text: str) -> str:
    """git's verdict line (verify-commit ends with it, after the key details)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
