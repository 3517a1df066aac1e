"""Planted secrets never leave mlops: not in output, logs, records, summaries or commits.

One story (story.py) runs once on real parts, with every secret in play at
every step:

- a registry password: a real registry with htpasswd auth, the password in a
  Docker config.json (`auths.<host>.auth` = base64 of `user:password`);
- a git token in the remote URL: origin is
  `http://x-access-token:TOKEN@127.0.0.1:PORT/remote.git`, served by the real
  `git http-backend` with basic auth (tests/support/githttp.py);
- a Prometheus bearer token ($MLOPS_PROMETHEUS_TOKEN), which a reverse proxy in
  front of the real Prometheus demands, and a password in the Prometheus URL.

It builds, promotes dev -> staging, starts prod's canary, analyses it,
promotes a step, approves, reads history and rolls back, plus failing variants
(a wrong registry password, a wrong git token, the git server down, a wrong
bearer token, Prometheus down, URLs with credentials that mlops refuses or git
misreads), all inside "GitHub Actions" so job summaries and `::error::`
annotations are written too. Then everything mlops produced is grepped for
every form of every secret (tests/support/secretgrep.py; test_grep.py shows it
finds them): stdout and stderr (also what reached file descriptors 1 and 2),
--json documents, build.json, the decision record, the step summary, every
object in the bare remote, the clone's .git (but its config, which holds the
origin URL by the user's own choice), the work tree, and any temporary clone
left behind. Each test names the artifact that leaked which secret, and how.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.secrets.story import GIT_USER, PROM_USER, Story, told
from tests.support.secretgrep import Secret, describe, scan

pytestmark = pytest.mark.usefixtures("docker_engine")


@pytest.fixture(scope="module")
def story(tmp_path_factory, docker_engine) -> Iterator[Story]:
    with told(tmp_path_factory.mktemp("secrets")) as told_story:
        yield told_story


def test_the_story_grep_sees_what_mlops_wrote(story):
    """The artifacts are really there: a leak planted in any of them would be found."""
    artifacts = story.artifacts()
    for expected in ("build: stdout", "build.json", "record.json", "GITHUB_STEP_SUMMARY",
                     "remote: every object", "clone/.git/HEAD"):
        assert artifacts.get(expected), f"{expected} is missing or empty"
    assert any(k.startswith("clone/.git/mlops/") for k in artifacts), sorted(artifacts)
    assert "::error::" in story.results["history, git server down"].err
    assert b"Mlops-Release:" in artifacts["remote: every object"]
    assert "clone/.git/config" not in artifacts
    fresh = Secret.make("fresh", "f-")
    planted = dict(artifacts)
    planted["remote: every object"] = bytes(artifacts["remote: every object"]) \
        + base64.b64encode(f"{GIT_USER}:{fresh.value}".encode())
    planted["history: stderr"] = str(artifacts["history: stderr"]) + f"http://u:{fresh.value}@h"
    flagged = sorted(leak.artifact for leak in scan(planted, [fresh]))
    assert flagged == ["history: stderr", "remote: every object"]


# -- each secret: really used, never shown --------------------------------------


def test_the_registry_password_is_used_and_never_shown(story):
    results = story.results
    built = results["build"]
    assert built.code == 0, built.err
    assert {b["status"] for b in built.json["builds"]} == {"built"}
    assert all(b["pushed"] for b in built.json["builds"])
    assert results["build again (human)"].code == 0, results["build again (human)"].err
    denied = results["build, wrong registry password"]
    assert denied.code == 1 and denied.json["ok"] is False, denied.err
    assert "unauthorized" in denied.err
    denied = results["promote dev, wrong registry password"]
    assert denied.code == 1 and "denied" in denied.err, denied.err
    assert results["promote dev"].code == 0, results["promote dev"].err  # digests verified
    leaks = scan(story.artifacts(), [story.secrets.registry_password,
                                     story.secrets.wrong_registry_password])
    assert not leaks, describe(leaks)
    refused = results["build, credentials in $MLOPS_REGISTRY"]
    assert refused.code == 1 and "https://***@127.0.0.1:" in refused.err, refused.err


def test_the_git_token_is_used_and_never_shown(story):
    results = story.results
    for name in ("promote dev", "promote dev again", "promote staging",
                 "approve the first release", "rollout start, first release",
                 "promote dev, third", "promote staging again", "rollout start",
                 "rollout promote", "approve", "history", "history (human)", "rollback dev"):
        assert results[name].code == 0, f"{name}: {results[name].err}"
    assert story.seen["authenticated pushes"] >= 7 and story.seen["push users"] == {GIT_USER}
    failing = ("history, wrong git token", "promote staging, wrong git token",
               "history, git server down", "rollout promote, git server down",
               "rollback dev, git server down", "history, git URL without a scheme")
    for name in failing:
        result = results[name]
        assert result.code == 1, f"{name}: {result.code} {result.err}"
        assert "mlops: error:" in result.err and "Traceback" not in result.err
    leaks = scan(story.artifacts(), [story.secrets.git_token, story.secrets.wrong_git_token])
    assert not leaks, describe(leaks)
    for name in failing:  # the error names the remote, redacted
        assert "***@127.0.0.1:" in results[name].err, f"{name}: {results[name].err}"


def test_the_prometheus_credentials_are_sent_and_never_shown(story):
    results = story.results
    analysed = results["rollout analyze"]
    assert analysed.code == 0, analysed.err
    assert analysed.json["result"] == "pass"
    assert story.seen["bearer accepted"] >= 1
    with_password = results["rollout analyze, password in the Prometheus URL"]
    assert with_password.code == 0, with_password.err
    assert story.seen["basic accepted"] >= 1
    refused = results["rollout analyze, wrong bearer token"]
    assert refused.code == 3 and refused.json["result"] == "fail", refused.err  # fails closed
    assert story.seen["bearer refused"] >= 1
    leaks = scan(story.artifacts(), [story.secrets.prometheus_token,
                                     story.secrets.wrong_prometheus_token,
                                     story.secrets.prometheus_password])
    assert not leaks, describe(leaks)
    down = results["rollout analyze, Prometheus down"]
    # The client keeps user:password apart from the URL it names in errors.
    assert down.code == 3 and "Prometheus at http://127.0.0.1:" in down.err, down.err
    assert f"{PROM_USER}:" not in down.err, down.err
    for name in ("no scheme", "a misspelt scheme", "a space"):
        bad = results[f"rollout analyze, Prometheus URL with {name}"]
        assert bad.code == 1 and "***@127.0.0.1:9090" in bad.err, f"{name}: {bad.err}"
