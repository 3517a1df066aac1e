"""A remote that always moves on: a promotion retries a bounded number of times, then stops.

README: "If the push is rejected because the remote moved on, the whole
promotion is recomputed on the new head and retried with backoff (bounded:
20 attempts)." The bare remote's pre-receive hook puts a commit of its own on
`main` before every push it receives, so each push loses the race as it
would against an endless stream of other promoters: git refuses the update
because the ref is no longer where the pusher saw it.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

from mlops.services.changes import PUSH_ATTEMPTS
from tests.commands.conftest import built, play, promote  # noqa: F401 - fixtures used by name
from tests.conftest import git

pytestmark = pytest.mark.usefixtures("docker_engine")

# Outside git's quarantine (a hook may not update refs inside it), with the
# repository's own object store; one line appended per push received.
HOOK = """#!/bin/sh
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
cat > /dev/null
old=$(git rev-parse refs/heads/main)
new=$(git commit-tree -p "$old" -m "someone else, again" "$old^{tree}")
git update-ref refs/heads/main "$new" "$old"
echo "$new" >> "$COUNT_FILE"
exit 0
"""


def test_a_remote_always_moving_on_stops_a_promotion(play, built, tmp_path):  # noqa: F811
    count = tmp_path / "pushes"
    hook = play.remote / "hooks" / "pre-receive"
    hook.write_text(HOOK.replace("$COUNT_FILE", str(count)))
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    status_before = play.proj.status()
    workspaces = set(Path(tempfile.gettempdir()).glob("mlops-workspace-*"))
    result = promote(play, "--to", "dev", "--build", str(built[1]), "--json")
    assert result.code == 1, result.err
    [line] = [x for x in result.err.splitlines() if x.startswith("mlops: error: ")]
    assert line.endswith(f"rejected: the remote moved on (gave up after {PUSH_ATTEMPTS} "
                         "attempts)"), line
    assert result.json == {"ok": False, "error": line.removeprefix("mlops: error: "),
                           "exit_code": 1}
    # Exactly PUSH_ATTEMPTS pushes reached the remote, each recomputed on a new head.
    assert len(count.read_text().split()) == PUSH_ATTEMPTS == 20
    notes = [x for x in result.err.splitlines() if "the remote moved on; recomputing" in x]
    assert len(notes) == PUSH_ATTEMPTS - 1 and notes[-1].endswith(f"(attempt {PUSH_ATTEMPTS})")
    # Nothing of the promotion landed: the remote holds only the hook's commits.
    subjects = git(play.remote, "log", "--format=%s", "refs/heads/main").splitlines()
    assert subjects[:PUSH_ATTEMPTS] == ["someone else, again"] * PUSH_ATTEMPTS
    assert not any(s.startswith("promote(") for s in subjects), subjects
    assert play.proj.status() == status_before
    assert set(Path(tempfile.gettempdir()).glob("mlops-workspace-*")) <= workspaces
