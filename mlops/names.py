"""Validation of names and paths before they become file paths or image refs."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

COMPONENT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
RELEASE_ID = re.compile(r"^r-[0-9a-f]{12}$")
COMMIT = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")  # a full SHA-1 or SHA-256 object id
# Docker reference grammar, simplified: host[:port]/path with lowercase segments.
_REF_SEGMENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])"
    r"(?::\d+)?"
)
REGISTRY = re.compile(rf"^{_HOST}(?:/{_REF_SEGMENT})*$")


# A registry prefix, as docker (distribution/reference) parses `<prefix>/<component>`:
# the first part is a host only with a '.' or ':' in it, or as `localhost`; hosts may
# be mixed-case, but every path component is lowercase. Without such a host the whole
# prefix is a Docker Hub path, so `BAD` is refused while `Registry.example.com/ml` is not.
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::(?P<port>[0-9]+))?", re.ASCII)
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
# A whole image name is at most 255 characters (distribution's NameTotalLengthMax);
# leave room for '/' and the longest component name.
REGISTRY_MAX = 255 - 1 - 63


def registry_problem(registry: object) -> str | None:
    """Why `registry` is not an image prefix `host[:port][/path]`, or None when it is.

    The one check of a registry: `mlops init --registry`, `registry:` in mlops.yaml and
    $MLOPS_REGISTRY all use it, so what one accepts docker accepts too."""
    if not isinstance(registry, str) or not registry:
        return "must be a non-empty string"
    if "://" in registry:
        return "has a scheme; give host[:port][/namespace], e.g. registry.example.com/ml"
    if "@" in registry:  # quoted no further: what comes before it may be a password
        return "holds an '@' (credentials go in docker login, not the registry name)"
    if len(registry) > REGISTRY_MAX:
        return f"is longer than {REGISTRY_MAX} characters"
    parts = registry.split("/")
    if "" in parts:
        return "has an empty component (a leading, trailing or doubled '/')"
    if _is_host(parts[0]):
        return _host_problem(parts[0]) or _path_problem(parts[1:])
    hub = _path_problem(parts)
    return f"{hub} (a first part without '.' or ':' is a Docker Hub path, not a host)" \
        if hub else None


def _is_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost" or part.startswith("[")


def _host_problem(host: str) -> str | None:
    match = _DOMAIN.fullmatch(host)
    if not match:
        return f"{host!r} is not a host[:port]"
    if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
        return f"{host!r} has a port outside 1-65535"
    return None


def _path_problem(parts: list[str]) -> str | None:
    for part in parts:
        if not _PATH_COMPONENT.fullmatch(part):
            return (f"{part!r} is not a repository path component: lowercase letters and "
                    "digits, separated by '.', '_', '__' or dashes")
    return None


def component_name_problem(name: object) -> str | None:
    """Why `name` is not a valid component name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if ".." in name or "/" in name or "\\" in name:
        return f"{name!r} must not contain '..' or path separators"
    if not COMPONENT_NAME.match(name):
        return (
            f"{name!r} must be lowercase letters, digits and '-', "
            "start and end with a letter or digit, at most 63 characters"
        )
    return None


def repo_path_problem(path: object) -> str | None:
    """Why `path` is not a safe repo-relative path, or None when it is."""
    if not isinstance(path, str) or not path.strip():
        return "must be a non-empty string"
    if "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return f"{path!r} must use '/' separators and no control characters"
    if path.startswith(":"):  # git would read it as pathspec magic (`:!*`, `:(glob)`)
        return f"{path!r} starts with ':'; name the file itself"
    pure = PurePosixPath(path)
    if pure.is_absolute():
        return f"{path!r} is absolute; paths are relative to the repository root"
    if ".." in pure.parts:
        return (f"{path!r} has a '..' part (not allowed: it can leave the repository); "
                "name it from the repository root")
    return None


def normalize_repo_path(path: str) -> str:
    parts = [p for p in PurePosixPath(path).parts if p != "."]
    return "/".join(parts) or "."


# What `git check-ref-format` refuses: control characters, space and ~^:?*[\, "..",
# "@{", "//", a component starting with "." or ending in ".lock".
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(?:/|$)")


def ref_name_problem(name: object) -> str | None:
    """Why git would refuse `name` as a branch or remote name, or None when it is fine.

    A leading '-' is refused too: git would read the name as an option."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if name.startswith(("-", ".", "/")) or name.endswith(("/", ".")) or name == "@" \
            or _BAD_REF.search(name):
        return f"{name!r} is not a valid git branch or remote name"
    return None


def image_problem(image: object) -> str | None:
    """Why `image` is not a repository reference `host[:port]/path`, or None when it is."""
    if not isinstance(image, str) or "/" not in image or len(image) > 255 \
            or not REGISTRY.match(image):
        return f"{image!r} is not an image repository like host[:port]/name"
    return None


def is_digest_ref(reference: str) -> bool:
    return "@" in reference and bool(DIGEST.match(reference.rsplit("@", 1)[1]))


def split_image(image: str) -> tuple[str, str]:
    """`host:port/ns/name` -> (`host:port`, `ns/name`)."""
    host, _, path = image.partition("/")
    if not path or not host:
        raise ValueError(f"image {image!r} has no registry host")
    return host, path
