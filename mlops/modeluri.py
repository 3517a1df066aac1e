"""Which model URIs a cluster can read: checked before a URI reaches an InferenceService.

The release's model URI becomes the InferenceService's `storageUri`, which
KServe's storage initializer fetches from inside the cluster
(kserve/kserve python/storage/kserve_storage/kserve_storage.py,
`Storage.download`: gs://, s3://, hf://, oci://, http(s)://, hdfs://, ...;
`file://` and any path that exists are read as *local to the initializer
container*). `pvc://` is mounted by the controller (pkg/constants/constants.go
`PvcURIPrefix`; pkg/controller/v1beta1/inferenceservice/utils/utils.go
`SupportedStorageURIPrefixList`). A `file://` URI or a path written by
`mlops run` names a file on the machine that ran it, which no pod has: the
predictor would fail to start. So only configured schemes pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mlops.errors import ConfigError

# What a cluster can read without anything mlops knows nothing about; http://
# works in KServe too but sends the model in clear text, so it is opt-in.
DEFAULT_SCHEMES: tuple[str, ...] = ("gs", "s3", "pvc", "oci", "hf", "https")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
# KServe matches lowercase prefixes literally (`uri.startswith("gs://")`), so
# the scheme is compared case-sensitively, as it will be read.
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")


def split(uri: str) -> tuple[str, str] | None:
    """(`s3`, `bucket/m`) for `s3://bucket/m`; None for a plain (relative or absolute) path."""
    match = _URI.match(uri)
    return (match.group(1), match.group(2)) if match else None


def problem(uri: str, allowed: Sequence[str]) -> str | None:
    """Why a cluster could not read `uri`, or None when it can."""
    parts = split(uri)
    if parts is None:
        return "is a path on this machine, not a URI a cluster can read"
    scheme, rest = parts
    if scheme not in allowed:
        if scheme == "file":
            return "is a file on the machine that wrote it; no pod in the cluster can read it"
        return f"has scheme {scheme}://, which the environment does not allow"
    if not rest.strip("/"):
        return "names nothing after the scheme"
    return None


def check(uri: str, allowed: Sequence[str], env: str) -> None:
    """Refuse, in one line, a model URI that environment `env` could not serve."""
    why = problem(uri, allowed)
    if why is not None:
        schemes = ", ".join(f"{s}://" for s in allowed)
        raise ConfigError(
            f"model URI {uri!r} {why}; {env}'s InferenceService needs one of {schemes} "
            f"(environments[].model_uri_schemes in mlops.yaml)"
        )


def schemes(value: Any, where: str) -> tuple[str, ...]:
    """Config checker: a non-empty list of URI scheme names, without `://`."""
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list of URI schemes, e.g. [s3, gs]")
    out = []
    for item in value:
        text = str(item).removesuffix("://") if isinstance(item, str) else ""
        if not _SCHEME.match(text):
            raise ConfigError(f"{where}: {item!r} is not a URI scheme (lowercase, like s3 or "
                              "oci+native)")
        out.append(text)
    return tuple(dict.fromkeys(out))
