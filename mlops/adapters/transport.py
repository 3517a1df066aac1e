"""HTTP transport: the only importer of requests and urllib3.

`metrics` opens its sessions here (`registry` speaks HTTP through `stdhttp`).
`builder` and `cluster` speak HTTP through SDKs (the docker SDK through requests, the kubernetes
client through urllib3) whose transport errors escape unwrapped; they catch
the classes named here, so which HTTP library sits underneath is known in one
module.
"""

from __future__ import annotations

import requests
import urllib3.exceptions

Response = requests.Response

# Anything requests raises (the docker SDK's APIError is one too: catch that first).
RequestError = requests.RequestException
# The peer refused, reset or stalled: worth another attempt.
UNREACHABLE = (requests.ConnectionError, requests.Timeout)
# ... or the body was cut off half-way.
INTERRUPTED = (*UNREACHABLE, requests.exceptions.ChunkedEncodingError)
Timeout = requests.Timeout

# Anything urllib3 raises: the kubernetes client, and docker's streams, let these through.
Urllib3Error = urllib3.exceptions.HTTPError
# A stream read that got no data in time, from either library (docker's logs and waits).
READ_TIMEOUTS = (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)
# No progress in time on a streamed request: any requests timeout, or urllib3's read timeout.
STALLED = (requests.Timeout, urllib3.exceptions.ReadTimeoutError)


def session(trust_env: bool = True) -> requests.Session:
    """A fresh session; `trust_env=False` skips proxy and netrc settings from the environment."""
    new = requests.Session()
    new.trust_env = trust_env
    return new


def urllib3_timed_out(exc: BaseException) -> bool:
    """Whether urllib3 gave up waiting, as opposed to being refused or cut off."""
    # NewConnectionError subclasses ConnectTimeoutError, but a refusal is no timeout
    return (isinstance(exc, urllib3.exceptions.TimeoutError)
            and not isinstance(exc, urllib3.exceptions.NewConnectionError))
