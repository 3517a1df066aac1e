"""Input hashing: what determines a component's image, as one sha256.

Pure: it works on the list of tracked files that `gitops` reads, so hashing
200 components costs one `git ls-files` and no file reads for clean files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: `ih_tag` serves a dry run that loads no spec
    from mlops.components import ComponentSpec
    from mlops.config import BuildSettings
    from mlops.tracked import TrackedFile

HASH_VERSION = b"mlops-input-hash/v1"
IH_TAG_LENGTH = 20


def effective_build_args(
    spec: ComponentSpec, settings: BuildSettings, overrides: Mapping[str, str]
) -> dict[str, str]:
    """Global build args, then the component's, then the command line's."""
    return {**settings.build_args, **spec.build_args, **overrides}


def input_hash(
    spec: ComponentSpec, files: Iterable[TrackedFile], build_args: Mapping[str, str]
) -> str:
    """sha256 over tracked files, Dockerfile location, context and build args.

    The base image reference enters through the BASE_IMAGE build arg, or
    through the Dockerfile's own `ARG BASE_IMAGE=` default when none is given.
    """
    import hashlib  # here: `ih_tag` serves a dry run answered from its memo, which hashes nothing

    h = hashlib.sha256()
    h.update(HASH_VERSION + b"\0")
    h.update(f"dockerfile\0{spec.dockerfile}\ncontext\0{spec.context}\n".encode())
    # One update of the whole text: the same digest as one update per line, in less time.
    h.update("".join(f"arg\0{key}\0{build_args[key]}\n" for key in sorted(build_args)).encode())
    h.update("".join(f"file\0{f.path}\0{f.mode}\0{f.blob}\n" for f in files).encode())
    return h.hexdigest()


def ih_tag(digest_hex: str) -> str:
    return f"ih-{digest_hex[:IH_TAG_LENGTH]}"
