"""Removing credentials from text before anyone prints it."""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
# `user:password@host...` with its scheme left out (a typo in a URL, or what git
# reads as ssh's host:path): a whole word, so `repo/name:tag@sha256:...` is not one.
_BARE_USERINFO = re.compile(r"(?<![^\s'\"(<=,])[^\s'\"(<=,/:@]+:[^\s'\"/@]+@(?!sha\d+:)")
_AUTH_HEADER = re.compile(
    r"(?i)(authorization|x-registry-auth|proxy-authorization)"
    r"(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+(\s+[^\s'\",}]+)?"
)
_KEYED = re.compile(r"(?i)(password|passwd|token|secret|auth)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+")


MIN_SECRET = 4  # a shorter "secret" would mask ordinary words


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Mask userinfo in URLs (also with the scheme left out), auth headers and
    password/token-like fields, and `secrets` (what the caller sent: a password, a
    token) wherever they appear, also bare, where no pattern would see them."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len,
                         reverse=True):  # longest first: one may contain another
        text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    text = _BARE_USERINFO.sub("***@", text)
    text = _AUTH_HEADER.sub(r"\1\2***", text)
    return _KEYED.sub(r"\1\2***", text)
