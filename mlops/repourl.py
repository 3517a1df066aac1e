"""The git URL `mlops init --repo-url` commits into Argo CD's Applications.

Pure. What a cluster's Argo CD can clone, with no credentials in it: the URL
is committed, and Argo CD takes credentials from a repository secret.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, unquote, urlsplit

from mlops.redact import redact

REPO_URL_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"(?P<user>[^/@]+)@(?P<host>[^/@:]+):(?P<path>.+)")  # git@host:path
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+", re.ASCII)
_KINDS = "https://, http://, ssh://, git://, file:// or user@host:path"
_CREDENTIALS = ("carries credentials ({url}); give it without them (Argo CD reads them "
                "from a repository secret), or they would be committed")


def problem(url: str) -> str | None:
    """Why `url` is not a credential-free git URL Argo CD could clone, or None.

    Messages show the URL only through `_shown`: a refused URL may hold a token."""
    if not url or any(c.isspace() or not c.isprintable() for c in url):
        return f"must be a git URL ({_KINDS}), got {shown(url)!r}"
    scheme = _SCHEME.match(url)
    if scheme:
        return _url_problem(scheme[1].lower(), url)
    scp = _SCP_LIKE.fullmatch(url)
    if not scp:
        return f"must be a git URL ({_KINDS}), got {shown(url)!r}"
    if ":" in scp["user"]:  # `user:token@host:path`: only a user name is no credential
        return _CREDENTIALS.format(url=shown(url))
    return None if _HOSTNAME.fullmatch(scp["host"]) else \
        f"has no valid host, got {shown(url)!r}"


def shown(url: str) -> str:
    """`url` as a message may show it: redacted, and with all before its last '@' masked,
    as redact would miss a token with a '/' in it."""
    if "@" not in url:
        return redact(url)
    scheme = _SCHEME.match(url)
    return f"{scheme[0] if scheme else ''}***@{redact(url.rpartition('@')[2])}"


def _url_problem(scheme: str, url: str) -> str | None:
    if scheme not in REPO_URL_SCHEMES:
        return f"must be a git URL ({_KINDS}), got {shown(url)!r}"
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    # Over http(s) a user name is only ever sent with a password or token; ssh's `git@`
    # names the account the key logs in as.
    # `%3A` is a ':' to git and to Argo CD's url.Parse: a password all the same
    if userinfo is not None and (":" in unquote(userinfo) or scheme in ("http", "https")):
        return _CREDENTIALS.format(url=shown(url))
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "may have no query or fragment (git URLs have none; a token may hide there)"
    return _file_url_problem(parts, url) if scheme == "file" else _host_problem(parts, url)


def _file_url_problem(parts: SplitResult, url: str) -> str | None:
    if parts.netloc or not parts.path.strip("/"):
        return f"file:// takes no host, only a path (file:///srv/ml.git), got {shown(url)!r}"
    return None


def _host_problem(parts: SplitResult, url: str) -> str | None:
    try:
        parts.port  # noqa: B018 - read for the ValueError an out-of-range port raises
    except ValueError:
        return f"has an invalid port, got {shown(url)!r}"
    if not parts.hostname or not _HOSTNAME.fullmatch(parts.hostname):
        return f"has no valid host, got {shown(url)!r}"
    if not parts.path.strip("/"):
        return f"names no repository (no path after the host), got {shown(url)!r}"
    return None
