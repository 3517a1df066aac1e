"""The grep of tests/secrets/test_secrets.py can fail: planted secrets are found in every form."""

from __future__ import annotations

import base64
import json
import urllib.parse

from tests.support.secretgrep import Secret, describe, files_under, scan


def test_the_grep_finds_a_planted_secret_in_every_form(tmp_path):
    secret = Secret.make("a password", "pw-", "/+=")
    other = Secret.make("another", "x-")
    user_pass = f"user:{secret.value}"
    leaking = {
        "plain": f"error: login failed for {secret.value}",
        "url": f"http://user:{urllib.parse.quote(secret.value, safe='')}@host/x",
        "docker config": json.dumps({"auths": {"h": {
            "auth": base64.b64encode(user_pass.encode()).decode()}}}),
        "basic header": "Authorization: Basic "
                        + base64.b64encode(f"ab:{secret.value}".encode()).decode(),
        "urlsafe base64": base64.urlsafe_b64encode(f"a{secret.value}".encode()).decode(),
        "truncated": f"token={secret.value[:len(secret.value) - 3]}",
        "bytes": b"\x00\x01" + secret.value.encode() + b"\xff",
    }
    leaks = scan(leaking, [secret, other])
    assert {leak.artifact for leak in leaks} == set(leaking), describe(leaks)
    assert {leak.secret for leak in leaks} == {"a password"}
    assert all(secret.value not in str(leak) for leak in leaks)  # the report masks it
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.json").write_text(leaking["docker config"])
    assert [leak.artifact for leak in scan(files_under(tmp_path, "t"), [secret])] == ["t/d/f.json"]
    clean = {"redacted": "http://***@host/x", "other text": secret.core[:16] + "..." + other.core}
    assert scan(clean, [secret]) == []
