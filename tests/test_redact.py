import pytest

from mlops.redact import redact


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("Authorization: Bearer eyJhbGciOi.token", "eyJhbGciOi.token"),
    ("clone https://ci:ghp_T0KEN@github.com/org/repo.git", "ghp_T0KEN"),
    ('{"password": "hunter2", "user": "x"}', "hunter2"),
    ("X-Registry-Auth: eyJ1c2VybmFtZSI6", "eyJ1c2VybmFtZSI6"),
])
def test_secrets_are_masked(text, secret):
    masked = redact(text)
    assert secret not in masked and "***" in masked


def test_plain_text_is_untouched():
    text = "push failed: connection refused to 127.0.0.1:5000"
    assert redact(text) == text
