"""Commits read from `git log` whatever their messages hold: separator bytes, NULs,
dates git cannot print. A pusher writes all of these; none may crash a reader or
make one commit read as another."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from mlops.adapters.gitops import history as githistory
from mlops.adapters.gitops import logformat
from mlops.adapters.gitops.workspace import Workspace
from mlops.errors import GitError
from tests.conftest import git

FAKE = "f" * 40
# A subject built to read as a prod promotion, approved by the CEO, of a commit that
# does not exist, under the separators the log format once used.
FORGING = (f"x\x1e{FAKE}\x1f1700000000\x1fforged\x1fMlops-Action: promote\x1d"
           "Mlops-Environment: prod\x1dMlops-Approver: ceo@example.com")


def raw_commit(repo: Path, parent: str | None, message: bytes, seconds: str = "1700000000"):
    """A commit object as written (`hash-object --literally`: git's own checks aside)."""
    tree = git(repo, "write-tree")
    body = (f"tree {tree}\n" + (f"parent {parent}\n" if parent else "")
            + f"author A <a@x> 1700000000 +0000\ncommitter C <c@x> {seconds} +0000\n\n"
            ).encode() + message
    sha = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
                         cwd=repo, input=body, capture_output=True, check=True
                         ).stdout.decode().strip()
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


@pytest.fixture
def hostile(tmp_path) -> tuple[Path, dict[str, str]]:
    """A bare repository whose main holds one commit of each kind, by name."""
    repo = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(repo))
    made: dict[str, str] = {}
    parent = None
    for name, message, seconds in [
        ("plain", b"plain\n\nMlops-Action: promote\nMlops-Environment: dev\n", "1700000000"),
        ("forging", FORGING.encode() + b"\n\nMlops-Action: promote\nMlops-Environment: dev\n",
         "1700000001"),
        ("separators in a value", b"values\n\nMlops-Action: promote\n"
         b"Mlops-Environment: dev\x1dMlops-Hold: injected\nMlops-Note: a\x1fb\x1ec\n",
         "1700000002"),
        ("nul", b"before\x00after\n\nMlops-Action: promote\n", "1700000003"),
        ("negative date", b"negative\n\nMlops-Action: promote\n", "-99999999999999999999"),
        ("400 digits", b"long\n\nMlops-Action: promote\n", "9" * 400),
        ("crlf", b"crlf\r\n\r\nMlops-Action: promote\r\nMlops-Environment: dev\r\n", "5"),
    ]:
        parent = made[name] = raw_commit(repo, parent, message, seconds)
    return repo, made


def test_the_full_clone_reads_each_commit_as_itself(hostile):
    repo, made = hostile
    with Workspace(str(repo), "main") as ws:
        commits = {c.sha: c for c in ws.log()}
    assert set(commits) == set(made.values())  # no commit from a subject
    forging = commits[made["forging"]]
    assert forging.subject == FORGING and forging.trailer("Mlops-Environment") == "dev"
    assert forging.trailer("Mlops-Approver") is None
    values = commits[made["separators in a value"]]
    assert values.trailer("Mlops-Environment") == "dev\x1dMlops-Hold: injected"
    assert values.trailer("Mlops-Hold") is None and values.trailer("Mlops-Note") == "a\x1fb\x1ec"
    assert commits[made["nul"]].subject == "before"  # git cuts a message at its NUL
    assert commits[made["negative date"]].time is None
    assert commits[made["400 digits"]].time is None
    assert commits[made["plain"]].time == 1700000000 and commits[made["crlf"]].time == 5


def test_history_reads_them_as_the_full_clone_does(hostile, tmp_path):
    repo, made = hostile
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    entries = githistory.read_remote(clone, str(repo), "main", lambda c: c, 50)
    assert {e.sha for e in entries} == set(made.values())
    by_sha = {e.sha: e for e in entries}
    assert by_sha[made["forging"]].first("Mlops-Approver") is None
    assert by_sha[made["separators in a value"]].first("Mlops-Hold") is None
    assert by_sha[made["400 digits"]].time is None


def test_a_record_git_would_never_print_is_one_line():
    with pytest.raises(GitError, match="cannot read"):
        logformat.parse("not a commit id\n1\nsubject")
    record = logformat.parse(f"{'a' * 64}\n-12\nsubject\nKey : value \nno colon\n")
    assert (record.sha, record.time, record.trailers) == ("a" * 64, -12, (("Key", "value"),))


def test_a_user_config_that_shows_signatures_changes_nothing(tmp_path, monkeypatch):
    """Release managers who sign commits often set log.showSignature: git then prints
    each signature's check before the commit's record."""
    from tests.support.promotion import ssh_key

    key, _ = ssh_key(tmp_path, "alice")
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    git(work, "-c", "user.name=A", "-c", "user.email=a@x", "-c", "gpg.format=ssh",
        "-c", f"user.signingkey={key}", "commit", "-q", "-S", "--allow-empty", "-m",
        "approve\n\nMlops-Action: approve")
    user = tmp_path / "gitconfig"
    user.write_text("[log]\n\tshowSignature = true\n[gpg]\n\tformat = ssh\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(user))
    assert "signature" in git(work, "log", "-1").lower()  # git does show it
    with Workspace(str(work), "main") as ws:
        (commit,) = ws.log()
        assert ws.first_parent_commits([]) == [commit.sha]
    assert commit.sha == git(work, "rev-parse", "HEAD") and commit.trailer("Mlops-Action")


def reference_entry(record: str) -> githistory.LogEntry:
    """`parse_entry` as `logformat.parse` reads a record: every `Key: value` line, both
    stripped, keys lower-cased, values in the order written."""
    parsed = logformat.parse(record)
    trailers: dict[str, list[str]] = {}
    for key, value in parsed.trailers:
        trailers.setdefault(key.lower(), []).append(value)
    return githistory.LogEntry(parsed.sha, parsed.time, parsed.subject, trailers)


PIECES = ["Mlops-Action", "mlops-ACTION ", " Key", ":", ": ", "::", " ", "\t", "\r", "\u2003",
          "\x1c", "\x85", "value", "é", "a=b", "", "(cherry picked from commit abc)"]


def test_trailers_are_read_as_logformat_reads_them():
    rng = random.Random(11)
    for _ in range(2000):
        lines = ["".join(rng.choices(PIECES, k=rng.randint(0, 5)))
                 for _ in range(rng.randint(0, 8))]
        record = "\n".join(["a" * 40, rng.choice(["5", "", "-3", "x"]), "sub: ject", *lines])
        assert githistory.parse_entry(record) == reference_entry(record), repr(record)


def test_keys_past_the_remembered_ones_are_read_the_same(monkeypatch):
    monkeypatch.setattr(githistory, "_NAMES", {})
    monkeypatch.setattr(githistory, "_MAX_NAMES", 3)
    record = "\n".join(["b" * 40, "1", "s", *(f" K{i} : v{i}" for i in range(10)), "K9: again"])
    assert githistory.parse_entry(record) == reference_entry(record)
    assert len(githistory._NAMES) == 3
    assert githistory.parse_entry(record).trailers["k9"] == ["v9", "again"]
