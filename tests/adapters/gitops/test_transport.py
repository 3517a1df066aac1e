"""Which git failures are worth another try, and how the transport is tuned.

The messages are git 2.39's own (curl 7.88), as printed through
tests/support/faultproxy.py and tests/support/githttp.py; the network tests
of the same behaviour are in tests/faults/test_git_remote_faults.py.
"""

from __future__ import annotations

import pytest

from mlops.adapters.gitops import transport
from mlops.adapters.gitops.transport import TransientGitError, TransportPolicy
from mlops.errors import ConfigError, GitError

URL = "'http://127.0.0.1:39097/remote.git/'"

TRANSIENT = [
    f"fatal: unable to access {URL}: Failed to connect to 127.0.0.1 port 39097 after 0 ms: "
    "Couldn't connect to server",
    f"fatal: unable to access {URL}: Recv failure: Connection reset by peer",
    f"fatal: unable to access {URL}: Empty reply from server",
    f"fatal: unable to access {URL}: The requested URL returned error: 503",
    f"fatal: unable to access {URL}: The requested URL returned error: 500",
    f"fatal: unable to access {URL}: The requested URL returned error: 429",
    f"fatal: unable to access {URL}: Operation too slow. Less than 1 bytes/sec transferred "
    "the last 2 seconds",
    "error: RPC failed; HTTP 503 curl 22 The requested URL returned error: 503\n"
    "send-pack: unexpected disconnect while reading sideband packet\n"
    "fatal: the remote end hung up unexpectedly",
    "error: RPC failed; curl 56 Recv failure: Connection reset by peer\n"
    "send-pack: unexpected disconnect while reading sideband packet\n"
    "fatal: the remote end hung up unexpectedly",
    "error: RPC failed; curl 18 transfer closed with outstanding read data remaining\n"
    "fetch-pack: unexpected disconnect while reading sideband packet\nfatal: early EOF\n"
    "fatal: fetch-pack: invalid index-pack output",
    "ssh: connect to host example.com port 22: Connection timed out\n"
    "fatal: Could not read from remote repository.",
    "fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused",
]

PERMANENT = [
    "fatal: unable to access 'http://nonexistent.invalid/x.git/': "
    "Could not resolve host: nonexistent.invalid",
    f"fatal: Authentication failed for {URL}",
    "fatal: could not read Username for 'http://127.0.0.1:39097': terminal prompts disabled",
    f"fatal: repository {URL} not found",
    f"fatal: unable to access {URL}: The requested URL returned error: 403",
    "warning: Could not find remote branch main to clone.\n"
    "fatal: Remote branch main not found in upstream origin",
    "fatal: '/no/such/repo.git' does not appear to be a git repository\n"
    "fatal: Could not read from remote repository.",
    "fatal: unable to access 'https://example.com/x.git/': SSL certificate problem: "
    "unable to get local issuer certificate",
    "git@example.com: Permission denied (publickey).\n"
    "fatal: Could not read from remote repository.",
    # a permanent cause wins over the transient symptom git prints beside it
    "error: RPC failed; HTTP 401 curl 22 The requested URL returned error: 401\n"
    "fatal: the remote end hung up unexpectedly",
    "fatal: some error nobody has seen before",
    "",
]


@pytest.mark.parametrize("stderr", TRANSIENT)
def test_network_failures_on_the_way_are_transient(stderr):
    assert transport.is_transient(stderr)


@pytest.mark.parametrize("stderr", PERMANENT)
def test_failures_that_would_repeat_are_not(stderr):
    assert not transport.is_transient(stderr)


def test_failure_is_one_redacted_line_of_the_right_kind():
    err = transport.failure(
        "cannot clone http://ci:s3cret@127.0.0.1:1/r.git",
        "fatal: unable to access 'http://ci:s3cret@127.0.0.1:1/r.git/': "
        "The requested URL returned error: 502\nhint: something\n")
    assert isinstance(err, TransientGitError)
    assert "s3cret" not in err.message and "\n" not in err.message
    assert err.message == "cannot clone http://***@127.0.0.1:1/r.git: " \
                          "The requested URL returned error: 502"
    assert type(transport.failure("x", "fatal: Authentication failed for 'u'")) is GitError


def test_policy_defaults_and_environment():
    assert TransportPolicy.from_env({}) == TransportPolicy(attempts=4, timeout=60)
    policy = TransportPolicy.from_env({"MLOPS_GIT_RETRIES": "2", "MLOPS_GIT_TIMEOUT": "1.5"})
    assert (policy.attempts, policy.timeout) == (2, 2)  # git takes whole seconds: rounded up
    assert policy.config_args() == ["-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime=2"]


@pytest.mark.parametrize(("name", "value"), [
    ("MLOPS_GIT_RETRIES", "0"), ("MLOPS_GIT_RETRIES", "1.5"), ("MLOPS_GIT_RETRIES", "many"),
    ("MLOPS_GIT_TIMEOUT", "0.5"), ("MLOPS_GIT_TIMEOUT", "nan"), ("MLOPS_GIT_TIMEOUT", "-3"),
])
def test_bad_policy_values_are_refused_in_one_line(name, value):
    with pytest.raises(ConfigError, match=f"\\${name} must be"):
        TransportPolicy.from_env({name: value})


def test_retrying_stops_at_the_bound_and_says_so():
    calls = []

    def fail() -> None:
        calls.append(1)
        raise TransientGitError("cannot clone u: Empty reply from server")

    notes: list[str] = []
    policy = TransportPolicy(attempts=3, initial=0.001, max_wait=0.001)
    with pytest.raises(GitError) as info:
        transport.retrying(fail, policy, notes.append)
    assert len(calls) == 3 and len(notes) == 2
    assert not isinstance(info.value, TransientGitError)
    assert info.value.message == "cannot clone u: Empty reply from server (gave up after 3 attempts)"
    assert notes[0] == "mlops: cannot clone u: Empty reply from server; retrying (attempt 2 of 3)"


def test_retrying_does_not_repeat_a_permanent_failure():
    calls = []

    def fail() -> None:
        calls.append(1)
        raise GitError("cannot clone u: Authentication failed")

    with pytest.raises(GitError, match="Authentication failed$"):
        transport.retrying(fail, TransportPolicy(attempts=5), None)
    assert len(calls) == 1
