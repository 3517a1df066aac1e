"""An environment folder committed as a symbolic link is refused, not written through.

`environments/staging -> prod` in a push changes neither the trust root nor the
environments' list, yet an ungated promotion into staging would then write
gated prod's overlay and record, with no approval (services/envdir.py,
`EnvDir.refuse_links`).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.commands.conftest import GOOD, promote
from tests.support.promotion import Playground, repo_files

pytestmark = pytest.mark.usefixtures("docker_engine")


def test_a_promotion_into_a_linked_environment_writes_nothing(project, built, tmp_path):
    play = Playground(tmp_path, project(repo_files(built[0])))
    assert promote(play, "--to", "dev", "--build", str(built[1])).code == 0
    play.pull()
    shutil.rmtree(play.clone / "environments/staging")
    os.symlink("prod", play.clone / "environments/staging")
    play.proj.git("add", "-A")
    play.proj.git("commit", "-q", "-m", "chore: dedupe overlays")
    play.proj.git("push", "-q", "origin", "main")
    head = play.remote_head()
    result = promote(play, "--to", "staging", "--from", "dev",
                     "--metrics", str(play.metrics("m", GOOD)))
    assert result.code == 1, result.err  # ConfigError: the repository's content
    assert result.err.strip().endswith("commit a real folder or file"), result.err
    assert "environments/staging: is a symbolic link" in result.err
    assert play.remote_head() == head
