"""MLflow credentials stay the client's own: a real `mlops promote`, run as a process with
$MLFLOW_TRACKING_TOKEN, $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD set, prints
them nowhere (stdout, stderr, --json) and writes them nowhere (the clone, the remote's
history, a run record), with MLflow up, out of reach, or refusing; a refusal is one redacted
line with MLflow's error code (docs/continuous-training.md, "MLflow").

The refusing server is a real HTTP server on 127.0.0.1 that answers every request with a
status and a multi-line body echoing the credentials it was sent, the way a proxy's or an
auth plugin's error page may. Every secret holds MARK, so a part of one is caught too."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlops import config as cfg
from mlops.commands import run as run_command
from mlops.services import runstore
from tests.commands.test_run_tracking import SPEC, collected
from tests.commands.test_run_tracking import repo as git_repo
from tests.conftest import git
from tests.services.test_tracking import tracked_playground
from tests.support.promotion import Playground
from tests.support.services import free_port

MARK = "S3CR3T"
TOKEN, USER, PASSWORD = f"tok-{MARK}-7q", f"usr-{MARK}-3k", f"pw-{MARK}-2h"
# in the tracking URI's userinfo; longer than the 500 characters an error is cut to, so the
# cut falls inside it, where it hides the `@` that marks it as credentials
URL_PASSWORD = "urlpw-" + f"Yv4{MARK}c27" * 50


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# how the credentials reach the client, and the Authorization header it then sends
SENT = {"token": f"Bearer {TOKEN}", "both": basic(USER, PASSWORD),
        "url": basic(USER, URL_PASSWORD)}  # requests puts the URI's userinfo over the rest
CODES = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 500: "INTERNAL_ERROR"}


def credentials(which: str) -> dict[str, str]:
    """The client's variables: the token alone, or a user and password too (the client then
    sends those, and not the token)."""
    token = {"MLFLOW_TRACKING_TOKEN": TOKEN}
    if which != "both":
        return token
    return {**token, "MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": PASSWORD}


class Refusing:
    """Answers every request with `status` and a body (JSON, or plain lines) that repeats the
    credentials it got: as a URL's userinfo, the Authorization header, `token=`, `password:`."""

    def __init__(self, status: int, as_json: bool) -> None:
        self.status, self.as_json, self.seen = status, as_json, []
        answer = self.answer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer(self)

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def answer(self, req: BaseHTTPRequestHandler) -> None:
        auth = req.headers.get("Authorization", "")
        self.seen.append(auth)
        kind, _, value = auth.partition(" ")
        plain = base64.b64decode(value).decode() if kind == "Basic" else value
        bare = plain.partition(":")[2] if kind == "Basic" else value
        lines = (f"login at http://{plain}@127.0.0.1:{self.port}/login\n"
                 f"Authorization: {auth}\ntoken={TOKEN}\npassword: {PASSWORD}\n"
                 f"no account has {bare}\n"  # as sent, bare: no pattern sees it
                 f"refused {req.command} {req.path}\n")
        body = json.dumps({"error_code": "PERMISSION_DENIED", "message": lines}) \
            if self.as_json else lines
        req.send_response(self.status)
        req.send_header("Content-Type", "application/json" if self.as_json else "text/plain")
        req.send_header("Content-Length", str(len(body.encode())))
        req.end_headers()
        req.wfile.write(body.encode())

    def url(self, which: str) -> str:
        userinfo = f"{USER}:{URL_PASSWORD}@" if which == "url" else ""
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def __enter__(self) -> Refusing:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in (MARK, *SENT.values()):  # any part of a secret; the encoded headers
            assert secret not in text, f"a secret ({secret[:20]}...) leaked:\n{text[:3000]}"


def assert_nowhere(play: Playground, *outputs: str) -> None:
    """No secret in `outputs`, in any file of the clone, nor in the remote's or clone's history."""
    history = [git(repo, "log", "-p", "--all", "--format=%H%n%B") for repo in
               (play.remote, play.clone)]
    files = [p.read_text(errors="replace") for p in Path(play.clone).rglob("*")
             if p.is_file() and ".git" not in p.relative_to(play.clone).parts]
    assert_clean(*outputs, *history, *files)


@pytest.fixture
def tracked(project, built, tmp_path, mlflow_server):
    """A playground tracking its own registered model, with one version logged in MLflow."""
    play, model, uri, _ = tracked_playground(project, tmp_path, built[0], mlflow_server.url,
                                             "secret", "20260101T120000-000001")
    return play, model, uri


def promote(play: Playground, built, uri: str, model_uri: str, which: str = "both"):
    """`mlops promote --to dev --json -v` as its own process, the secrets in its environment."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, **credentials(which)}
    return subprocess.run(
        [sys.executable, "-m", "mlops", "promote", "--to", "dev", "--build", str(built[1]),
         "--model-uri", model_uri, "--repo", str(play.clone), "--json", "-v"],
        capture_output=True, text=True, env=env, timeout=300)


def mirror_error(done: subprocess.CompletedProcess) -> str:
    """The promotion stands; MLflow's error is in --json and is stderr's one MLflow line."""
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout)["tracking"]["error"]
    assert "\n" not in error
    mlflow_lines = [line for line in done.stderr.splitlines() if "mlflow" in line.lower()]
    assert mlflow_lines == [f"warning: MLflow not updated (alias dev): {error}"], done.stderr
    return error


def test_mlflow_up_the_credentials_are_printed_and_written_nowhere(tracked, built,
                                                                   mlflow_server):
    play, model, uri = tracked
    done = promote(play, built, mlflow_server.url, uri)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tracking"]["ok"] is True
    assert mlflow_server.alias(model, "dev") is not None  # the client really talked to it
    assert_nowhere(play, done.stdout, done.stderr)


def test_mlflow_out_of_reach_is_one_redacted_line(tracked, built):
    play, _, uri = tracked
    done = promote(play, built, f"http://{USER}:{URL_PASSWORD}@127.0.0.1:{free_port()}", uri)
    error = mirror_error(done)
    assert "unreachable" in error and "http://***@127.0.0.1" in error
    assert_nowhere(play, done.stdout, done.stderr)


@pytest.mark.parametrize("which", sorted(SENT))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("status", sorted(CODES))
def test_a_refusal_is_one_redacted_line_with_its_error_code(tracked, built, status, as_json,
                                                            which):
    play, _, uri = tracked
    with Refusing(status, as_json) as server:
        done = promote(play, built, server.url(which), uri, which)
    assert server.seen and set(server.seen) == {SENT[which]}  # the client sent the secrets
    error = mirror_error(done)
    assert error.startswith(f"{'PERMISSION_DENIED' if as_json else CODES[status]}: ")
    assert as_json or f"error code {status}" in error
    assert "login at http://***@127.0.0.1" in error  # the server's own words, masked
    assert "no account has ***" in error, error
    if which != "url":  # (the long password's line is cut at 500 characters)
        assert "Authorization: ***" in error and "token=***" in error
    assert_nowhere(play, done.stdout, done.stderr)


@pytest.mark.parametrize("which", sorted(SENT))
def test_a_refused_run_writes_no_secret_in_its_record(tmp_path, monkeypatch, which):
    """`mlops run`'s last step (tests/commands/test_run_tracking.py) against the refusal."""
    root = git_repo(tmp_path)
    for key, value in credentials(which).items():
        monkeypatch.setenv(key, value)
    with Refusing(401, as_json=False) as server:
        recorded, mirrored = run_command._record_run(
            root, cfg.Tracking(uri=server.url(which)), runstore.start(),
            collected("s3://models/run/secret"), SPEC)
    assert server.seen and set(server.seen) == {SENT[which]}
    assert mirrored is not None and not mirrored.ok and recorded.mlflow is None
    assert mirrored.error.startswith("UNAUTHENTICATED: ") and "\n" not in mirrored.error
    written = [p.read_text() for p in (root / ".mlops/runs").glob("*.json")]
    assert written
    assert_clean(mirrored.error, json.dumps(mirrored.dump()), *written,
                 git(root, "log", "-p", "--all"), git(root, "status", "--porcelain"))
