"""`mlops history`: the remote branch's promotions, read by one fetch into a private ref.

The entries must be what a full clone's `git log` gives (checked against
`Workspace.log`, the clone every other command reads), through odd trailer
spellings, folded values and commits that only look like promotions; the
user's branches, remote-tracking refs, index and work tree stay as they were;
and `--limit` stops the reading early.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from mlops import trailers as tr
from mlops.adapters.gitops import history as githistory
from mlops.adapters.gitops.workspace import Commit, Workspace
from mlops.commands import history as history_command
from mlops.commands.history import ACTIONS, _human
from mlops.errors import GitError
from tests.conftest import git, mlops_yaml
from tests.support.untouched import leftover_temp_dirs, repo_state

ODD_MESSAGES = [
    "promote(dev): release r-1 from build\n\nbody\n\nMlops-Action: promote\nMlops-Release: r-1\n"
    "Mlops-Environment: dev\nMlops-Digest: a=sha256:1\nMlops-Digest: b=sha256:2\n"
    "Mlops-Gate: acc=pass\nMlops-Provenance: a=ci@x\n",
    "a developer's commit\n\njust code\n",
    "spacing and case\n\nmlops-action : promote\nMLOPS-ENVIRONMENT:   staging  \n"
    "Mlops-Release: r-2\nMlops-Hold: frozen\n",
    "folded\n\nMlops-Action: rollback\nMlops-Environment:\n  prod\nMlops-Release: r-3\n"
    "  continued\nMlops-Note: a\n b\n",
    "trailers not at the end\n\nMlops-Action: promote\nMlops-Environment: dev\n\n"
    "This paragraph ends the message.\n",
    "approve(prod)\n\nMlops-Action: approve\nMlops-Approve: r-9\nMlops-Environment: prod\n"
    "Mlops-Approver: alice\n",
    "unknown action\n\nMlops-Action: frobnicate\nMlops-Environment: dev\n",
    "a longer name\n\nMlops-Action: promote\nMlops-Environment: dev-2\n",
    "other trailers\n\nMlops-Action: rollout-step\nMlops-Environment: dev\nMlops-Canary: 50\n"
    "Signed-off-by: x <x@y>\n(cherry picked from commit abc)\n",
    "crlf\r\n\r\nMlops-Action: promote\r\nMlops-Environment: dev\r\n",
]


def fast_commits(repo: Path, messages: list[str], start: int = 1_700_000_000) -> None:
    """One empty commit per message on main, made by one `git fast-import`."""
    parent = git(repo, "rev-parse", "refs/heads/main")
    chunks = []
    for i, message in enumerate(messages):
        data = message.encode()
        chunks.append(b"commit refs/heads/main\ncommitter T <t@x> %d +0000\ndata %d\n%s\n"
                      % (start + i, len(data), data))
        if i == 0:
            chunks.append(f"from {parent}\n".encode())
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(chunks),
                   check=True)


@pytest.fixture
def repo(project, tmp_path):
    """A clone with an `origin` remote whose main holds ODD_MESSAGES, not yet fetched."""
    proj = project({"mlops.yaml": mlops_yaml("127.0.0.1:5000/x")})
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    proj.git("remote", "add", "origin", str(remote))
    proj.git("push", "-q", "origin", "main")
    proj.git("fetch", "-q", "origin")
    fast_commits(remote, ODD_MESSAGES)
    return proj, remote


def oracle(remote: Path, env: str | None, limit: int) -> list[dict]:
    """What history printed before: every commit of a full clone, then filter, then limit."""
    with Workspace(str(remote), "main") as ws:
        commits = [c for c in ws.log() if c.trailer(tr.ACTION) in ACTIONS
                   and (env is None or c.trailer(tr.ENVIRONMENT) == env)]
    return [_entry(c) for c in commits][:limit]


def _entry(c: Commit) -> dict:
    one, every = c.trailer, lambda k: tr.pairs(c.trailer_all(k))
    return {
        "commit": c.sha,
        "time": dt.datetime.fromtimestamp(c.time, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if c.time < 253402300800 else None,
        "action": one(tr.ACTION), "env": one(tr.ENVIRONMENT),
        "release": one(tr.RELEASE) or one(tr.APPROVE), "from": one(tr.FROM),
        "digests": every(tr.DIGEST), "pipelines": every(tr.PIPELINE),
        "gates": every(tr.GATE), "approver": one(tr.APPROVER), "hold": one(tr.HOLD),
        "canary": one(tr.CANARY), "analysis": one(tr.ANALYSIS),
        "provenance": every(tr.PROVENANCE), "note": one(tr.NOTE), "subject": c.subject,
    }


@pytest.mark.parametrize("args", [(), ("--env", "dev"), ("--env", "prod"),
                                  ("--env", "staging"), ("--limit", "2"),
                                  ("--env", "dev", "--limit", "1")])
def test_entries_are_what_a_full_clone_gives(repo, args):
    proj, remote = repo
    result = proj.run("history", "--json", *args)
    assert result.code == 0, result.err
    env = args[args.index("--env") + 1] if "--env" in args else None
    limit = int(args[args.index("--limit") + 1]) if "--limit" in args else 50
    assert result.json == {"env": env, "entries": oracle(remote, env, limit)}
    assert result.out == json.dumps(result.json, indent=2) + "\n"  # entries written ahead


def test_the_human_listing_is_unchanged(repo):
    proj, remote = repo
    lines = proj.run("history").out.splitlines()
    assert lines == _human(oracle(remote, None, 50)).splitlines()
    assert lines[-1].endswith("promote          dev      r-1  from -  [acc=pass]  "
                              "provenance 1 signed")
    assert "rollback         prod     r-3 continued  from -  [no gates]  (a b)" in lines[4]
    assert "frobnicate" not in "\n".join(lines) and len(lines) == 7


def test_only_a_private_ref_changes_in_the_users_clone(repo):
    proj, remote = repo
    before = repo_state(proj.path)
    fetch_head = (proj.path / ".git" / "FETCH_HEAD").read_bytes()
    assert proj.run("history").code == 0
    after = repo_state(proj.path)
    added = set(after.pop("refs").splitlines()) - set(before.pop("refs").splitlines())
    assert after == before  # HEAD, status, every file of the work tree
    assert added == {f"refs/mlops/remote/main {git(remote, 'rev-parse', 'main')}"}
    assert "mlops" not in proj.git("branch", "-a")
    assert proj.git("rev-parse", "origin/main") != git(remote, "rev-parse", "main")
    assert (proj.path / ".git" / "FETCH_HEAD").read_bytes() == fetch_head  # no URL written


def test_a_limit_stops_reading_early(repo, monkeypatch):
    proj, remote = repo
    fast_commits(remote, [f"promote(dev) {i}\n\nMlops-Action: promote\nMlops-Environment: "
                          f"{'dev' if i % 3 else 'prod'}\n" for i in range(500)])
    parsed = []
    real = githistory.parse_entry
    monkeypatch.setattr(githistory, "parse_entry", lambda e: parsed.append(1) or real(e))
    result = proj.run("history", "--json", "--limit", "5")
    assert result.code == 0 and len(result.json["entries"]) == 5
    assert len(parsed) == githistory.FIRST_BATCH
    parsed.clear()
    result = proj.run("history", "--json", "--env", "prod", "--limit", "100")
    assert [e["env"] for e in result.json["entries"]] == ["prod"] * 100
    assert 100 <= len(parsed) <= 300, len(parsed)  # prod's commits, a batch at a time
    assert result.json["entries"] == oracle(remote, "prod", 100)


def test_a_shallow_clone_reads_the_whole_history_and_stays_shallow(repo, tmp_path):
    _, remote = repo
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{remote}", str(shallow))
    temp_before = leftover_temp_dirs()
    proc = subprocess.run(["mlops", "history", "--json", "--repo", str(shallow)],
                          capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["entries"] == oracle(remote, None, 50)
    assert git(shallow, "rev-parse", "--is-shallow-repository") == "true"
    assert git(shallow, "for-each-ref", "refs/mlops") == ""
    assert leftover_temp_dirs() <= temp_before


def test_a_fetch_that_cannot_take_the_ref_is_retried_then_one_line(repo):
    proj, _ = repo
    lock = proj.path / ".git" / "refs" / "mlops" / "remote" / "main.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")  # another `mlops history` fetching right now
    result = proj.run("history", env={"MLOPS_GIT_RETRIES": "2"})
    assert result.code == 1 and "Traceback" not in result.err
    assert "retrying (attempt 2 of 2)" in result.err
    last = result.err.splitlines()[-1]
    assert "cannot update refs/mlops/remote/main" in last and last.endswith("2 attempts)")
    lock.unlink()
    assert proj.run("history").code == 0


def test_a_relative_remote_path_is_read_from_the_clone(repo, tmp_path):
    proj, _ = repo
    proj.git("remote", "set-url", "origin", "../remote.git")
    result = proj.run("history", "--json", "--env", "staging")
    assert result.code == 0, result.err
    assert [e["release"] for e in result.json["entries"]] == ["r-2"]


# -- the first batch, read while the fetch runs -----------------------------------


def record_order(monkeypatch) -> list[tuple[str, str]]:
    """Each fetch and each log batch started, in order: ("fetch", url) or ("log", ref)."""
    events: list[tuple[str, str]] = []
    fetch, start = githistory._fetch, githistory._start_batch

    def fetching(repo, url, *rest):
        events.append(("fetch", url))
        return fetch(repo, url, *rest)

    def starting(repo, ref, *rest):
        batch = start(repo, ref, *rest)
        events.append(("log", ref))
        started.append(batch)
        return batch

    started: list = []
    monkeypatch.setattr(githistory, "_fetch", fetching)
    monkeypatch.setattr(githistory, "_start_batch", starting)
    record_order.started = started  # type: ignore[attr-defined]
    return events


def test_an_unchanged_branch_is_read_while_the_fetch_runs(repo, monkeypatch):
    proj, remote = repo
    assert proj.run("history").code == 0  # the private ref now exists
    events = record_order(monkeypatch)
    result = proj.run("history", "--json")
    assert result.code == 0, result.err
    held = git(remote, "rev-parse", "main")
    assert events == [("log", held), ("fetch", str(remote))]
    assert result.json["entries"] == oracle(remote, None, 50)


def test_commits_pushed_since_the_last_look_are_listed(repo, monkeypatch):
    proj, remote = repo
    assert proj.run("history").code == 0
    before = git(remote, "rev-parse", "main")
    fast_commits(remote, ["new\n\nMlops-Action: promote\nMlops-Environment: prod\n"
                          "Mlops-Release: r-new\n"], start=1_800_000_000)
    events = record_order(monkeypatch)
    result = proj.run("history", "--json", "--env", "prod")
    assert result.code == 0, result.err
    now = git(remote, "rev-parse", "main")
    assert events == [("log", before), ("fetch", str(remote)), ("log", now)]
    assert result.json["entries"][0]["release"] == "r-new"
    assert result.json["entries"] == oracle(remote, "prod", 50)
    assert all(batch.done for batch in record_order.started)  # reaped, files closed


@pytest.mark.parametrize("limit", ["31", "32", "33", "70"])
def test_entries_written_a_batch_at_a_time_print_as_a_whole(repo, limit):
    """More entries than a batch, a limit inside one, and a fetch bringing new commits
    after the first batches were written: what is printed is the whole result."""
    proj, remote = repo
    messages = [f"p {i}\n\nMlops-Action: promote\nMlops-Environment: dev\n"
                f"Mlops-Digest: c{i % 3}=sha256:{i}\nMlops-Gate: g=pass\n" for i in range(80)]
    fast_commits(remote, messages)
    assert proj.run("history").code == 0  # the private ref now exists
    fast_commits(remote, [f"new {i}\n\nMlops-Action: rollback\nMlops-Environment: prod\n"
                          for i in range(5)], start=1_800_000_000)
    expected = oracle(remote, None, int(limit))
    result = proj.run("history", "--json", "--limit", limit)
    assert result.code == 0, result.err
    assert result.out == json.dumps({"env": None, "entries": expected}, indent=2) + "\n"
    assert result.json["entries"][0]["subject"] == "new 4"
    human = proj.run("history", "--limit", limit)
    assert human.out == _human(expected) + "\n"


def test_the_remote_url_is_found_while_the_held_log_is_read(repo, monkeypatch):
    proj, remote = repo
    assert proj.run("history").code == 0
    events = record_order(monkeypatch)
    real = history_command.remote_url
    monkeypatch.setattr(history_command, "remote_url",
                        lambda *a: events.append(("url", "")) or real(*a))
    result = proj.run("history", "--json")
    assert result.code == 0, result.err
    held = git(remote, "rev-parse", "main")
    assert events == [("log", held), ("url", ""), ("fetch", str(remote))]


def test_a_missing_remote_is_the_error_and_leaves_no_log_running(repo, monkeypatch):
    proj, _ = repo
    assert proj.run("history").code == 0
    proj.git("remote", "rename", "origin", "elsewhere")
    events = record_order(monkeypatch)
    result = proj.run("history")
    assert result.code != 0 and result.err.strip().endswith("no git remote named 'origin'")
    assert [kind for kind, _ in events] == ["log"]
    assert all(batch.done for batch in record_order.started)

    def cannot_start(*args):
        raise GitError("git is not installed")

    monkeypatch.setattr(githistory, "_start_batch", cannot_start)
    result = proj.run("history")  # both fail: the remote's error came first, and still does
    assert result.err.strip().endswith("no git remote named 'origin'"), result.err
    proj.git("remote", "rename", "elsewhere", "origin")
    assert proj.run("history").err.strip().endswith("git is not installed")


def test_a_failed_fetch_leaves_no_log_running(repo, monkeypatch):
    proj, remote = repo
    assert proj.run("history").code == 0
    proj.git("remote", "set-url", "origin", str(remote) + ".missing")
    events = record_order(monkeypatch)
    result = proj.run("history", env={"MLOPS_GIT_RETRIES": "1"})
    assert result.code != 0 and len(result.err.strip().splitlines()) == 1, result.err
    assert [kind for kind, _ in events] == ["log", "fetch"]
    assert all(batch.done for batch in record_order.started)


def test_a_private_ref_left_naming_no_commit_is_read_again_after_the_fetch(repo):
    proj, remote = repo
    assert proj.run("history").code == 0
    held = proj.path / ".git" / "refs" / "mlops" / "remote" / "main"
    held.write_text(proj.git("rev-parse", "HEAD^{tree}").strip() + "\n")  # not a commit
    result = proj.run("history", "--json")
    assert result.code == 0, result.err
    assert result.json["entries"] == oracle(remote, None, 50)
    assert held.read_text().strip() == git(remote, "rev-parse", "main")


def test_a_packed_private_ref_is_read_after_the_fetch(repo, monkeypatch):
    proj, remote = repo
    assert proj.run("history").code == 0
    proj.git("pack-refs", "--all")  # no loose file to read the held commit from
    events = record_order(monkeypatch)
    result = proj.run("history", "--json", "--env", "dev")
    assert result.code == 0, result.err
    assert events == [("fetch", str(remote)), ("log", "refs/mlops/remote/main")]
    assert result.json["entries"] == oracle(remote, "dev", 50)
    fast_commits(remote, ["after packing\n\nMlops-Action: promote\nMlops-Environment: dev\n"],
                 start=1_800_000_000)
    events.clear()
    result = proj.run("history", "--json", "--env", "dev")
    assert events == [("fetch", str(remote)), ("log", git(remote, "rev-parse", "main"))]
    assert result.json["entries"] == oracle(remote, "dev", 50)
    assert result.json["entries"][0]["subject"] == "after packing"


# git reads the `--grep` patterns in the C locale, where `[[:space:]]` is ASCII;
# a value is stripped of any Unicode space. The patterns must still let through
# every commit the full clone's reading keeps.
UNICODE_MESSAGES = [
    "prod with an em space\n\nMlops-Action: promote\nMlops-Environment: prod\u2003\n"
    "Mlops-Release: r-em\n",
    "folded after a no-break space\n\nMlops-Action: promote\nMlops-Environment: \u3000\n"
    "  prod\nMlops-Release: r-fold\n",
    "sujet accentué\n\nMlops-Action: promote\nMlops-Environment: prod\nMlops-Release: r-é\n"
    "Mlops-Note: naïve café\n",
    "not prod\n\nMlops-Action: promote\nMlops-Environment: préprod\nMlops-Release: r-no\n",
]


def test_unicode_spaces_and_letters_read_as_a_full_clone_reads_them(repo):
    proj, remote = repo
    fast_commits(remote, UNICODE_MESSAGES, start=1_800_000_000)
    expected = oracle(remote, "prod", 50)
    assert {"r-em", "r-fold", "r-é"} <= {e["release"] for e in expected}
    result = proj.run("history", "--json", "--env", "prod")
    assert result.code == 0, result.err
    assert result.json["entries"] == expected
    assert result.json["entries"][0]["note"] == "naïve café"
    every = proj.run("history", "--json").json["entries"]
    assert every == oracle(remote, None, 50)
    assert every[0]["subject"] == "not prod" and every[1]["subject"] == "sujet accentué"


def test_the_listing_escapes_control_characters_a_pusher_wrote(repo):
    """Found by a bad-input hunt: a trailer value's escape sequence reached the terminal."""
    proj, remote = repo
    fast_commits(remote, ["x\n\nMlops-Action: rollback\nMlops-Environment: prod\n"
                          "Mlops-Release: r-3\x1b[31mRED\x9b2J\n"], start=1_900_000_000)
    result = proj.run("history")
    assert result.code == 0, result.err
    assert "\x1b" not in result.out and "\x9b" not in result.out
    assert "r-3\\x1b[31mRED\\x9b2J" in result.out.splitlines()[0]
    assert proj.run("history", "--json").json["entries"][0]["release"] == "r-3\x1b[31mRED\x9b2J"


def test_a_commit_dated_past_the_year_9999_is_listed_without_a_date(repo):
    """Its committer wrote the date (GIT_COMMITTER_DATE=@99999999999999): `history` lists
    it with no date instead of failing on it."""
    proj, remote = repo
    fast_commits(remote, ["far future\n\nMlops-Action: promote\nMlops-Environment: dev\n"
                          "Mlops-Release: r-far\n"], start=99_999_999_999_999)
    result = proj.run("history", "--json", "--env", "dev")
    assert result.code == 0, result.err
    first = result.json["entries"][0]
    assert (first["release"], first["time"]) == ("r-far", None)
    assert result.json["entries"][1]["time"] == "2023-11-14T22:13:29Z"
    lines = proj.run("history", "--env", "dev").out.splitlines()
    assert lines[0].startswith("(no valid date)       ") and "r-far" in lines[0]


def test_a_promotion_naming_no_environment_is_listed(repo):
    """Anyone who can push can write one; the listing shows '-' for its environment."""
    proj, remote = repo
    fast_commits(remote, ["no env\n\nMlops-Action: promote\nMlops-Release: r-x\n"],
                 start=1_800_000_000)
    result = proj.run("history")
    assert result.code == 0, result.err
    assert "promote          -        r-x  from -" in result.out.splitlines()[0]
