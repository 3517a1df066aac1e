"""OCI image labels (`org.opencontainers.image.*`) that say where an image came from.

Pure. The labels are not part of the input hash: `revision` and `created` name
the commit that first built an input hash, and a later commit with the same
inputs reuses that image (its `ih-` tag) with those labels, which stay true:
that commit's files are exactly the image's inputs. Hashing them would rebuild
every component on every commit. `version` needs no hashing of its own, since
it comes from component.yaml, whose blob is hashed. `created` is the source
commit's committer time, so building the same commit twice gives the same
labels (not the wall clock).

https://github.com/opencontainers/image-spec/blob/main/annotations.md
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from mlops import utctime
from mlops.redact import redact

PREFIX = "org.opencontainers.image."


def source_url(url: str) -> str:
    """`url` without credentials: userinfo dropped from scheme URLs, the rest redacted."""
    parts = urlsplit(url)
    if parts.scheme and parts.netloc and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return redact(url)


def oci_labels(source: str | None, revision: str | None, created: int | None,
               version: str) -> dict[str, str]:
    """The labels for one image; those with no value here (no remote, no commit) are left out."""
    labels = {"version": version}
    if source:
        labels["source"] = source_url(source)
    if revision:
        labels["revision"] = revision
    if created is not None and (moment := utctime.at(created)):
        labels["created"] = moment  # left out for a commit dated past the year 9999
    return {PREFIX + key: value for key, value in sorted(labels.items())}
