import pytest

from mlops.redact import redact


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("Authorization: Bearer eyJhbGciOi.token", "eyJhbGciOi.token"),
    ("clone https://ci:ghp_T0KEN@github.com/org/repo.git", "ghp_T0KEN"),
    ('{"password": "hunter2", "user": "x"}', "hunter2"),
    ("X-Registry-Auth: eyJ1c2VybmFtZSI6", "eyJ1c2VybmFtZSI6"),
    # the scheme left out: a typo, or a git remote that git reads as ssh's host:path
    ("got 'prom:pa%2Fss@127.0.0.1:9090'", "pa%2Fss"),
    ("cannot clone oauth2:glpat-T0KEN@gitlab.example.com/g/r.git: no", "glpat-T0KEN"),
    ("url=ci:hunter3@host", "hunter3"),
])
def test_secrets_are_masked(text, secret):
    masked = redact(text)
    assert secret not in masked and "***" in masked


@pytest.mark.parametrize("text", [
    "push failed: connection refused to 127.0.0.1:5000",
    "pinned 127.0.0.1:5000/mlops/train:0.1.0@sha256:0123abcd",
    "image train:0.1.0@sha256:0123abcd not found",
    "approved by alice@example.com (key ssh-ed25519 AAAA alice@example.com)",
    "Mlops-Digest: train=127.0.0.1:5000/mlops/train@sha256:0123abcd",
])
def test_plain_text_is_untouched(text):
    assert redact(text) == text


def test_secrets_the_caller_sent_are_masked_bare_longest_first_and_not_when_tiny():
    text = "denied for tok-abc and tok-abc-long; ok, see token: x"
    assert redact(text, ["tok-abc", "tok-abc-long", None, "ok"]) == \
        "denied for *** and ***; ok, see token: ***"
