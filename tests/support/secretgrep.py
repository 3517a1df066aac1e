"""Planted secrets, and a grep that finds them in any form mlops could leak them in.

A `Secret` is a random string made for one test session. It is looked for as
it is, URL-encoded, by its random core alone (so a truncated or half-masked
copy is caught too), and inside any base64 text at any alignment, standard
or URL-safe (so `base64("user:" + secret)`, the form in Docker's config.json
and in HTTP basic auth, is caught without knowing the user name)::

    token = Secret.make("git-token")
    leaks = scan({"stdout": text, "build.json": path.read_bytes()}, [token])
    assert not leaks, describe(leaks)
"""

from __future__ import annotations

import base64
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Secret:
    """`value` holds `core`, 32 random hex digits no other text will contain."""

    name: str  # what it is, for the report: "registry password", ...
    value: str
    core: str

    @classmethod
    def make(cls, name: str, prefix: str, suffix: str = "") -> Secret:
        core = uuid.uuid4().hex
        return cls(name, f"{prefix}{core}{suffix}", core)

    def forms(self) -> dict[str, bytes]:
        """Every spelling to grep for: form name -> bytes."""
        found = {"as is": self.value.encode(),
                 "URL-encoded": urllib.parse.quote(self.value, safe="").encode(),
                 "form-encoded": urllib.parse.quote_plus(self.value, safe="").encode()}
        for i, fragment in enumerate(base64_fragments(self.value.encode())):
            found[f"base64 #{i}"] = fragment
        found["random core"] = self.core.encode()  # last: the least telling name
        return found


def base64_fragments(secret: bytes) -> list[bytes]:
    """What any base64 encoding of a text containing `secret` must contain.

    Base64 turns each 3 bytes into 4 characters, so where the secret starts
    modulo 3 decides its encoding. For each of the 3 alignments this is the run
    of characters that depends on the secret's bytes alone; both the standard
    and the URL-safe alphabets.
    """
    fragments = []
    for pad in range(3):
        skip = (3 - pad) % 3  # secret bytes sharing a group with the unknown prefix
        usable = len(secret) - skip
        body = secret[skip: skip + usable - usable % 3]
        encoded = base64.b64encode(body)
        fragments.append(encoded)
        fragments.append(base64.urlsafe_b64encode(body))
    return list(dict.fromkeys(f for f in fragments if len(f) >= 16))


@dataclass(frozen=True)
class Leak:
    artifact: str
    secret: str
    form: str
    context: str  # the text around it, with the secret itself masked

    def __str__(self) -> str:
        return f"{self.artifact}: {self.secret} ({self.form}) in ...{self.context}..."


Artifacts = Mapping[str, str | bytes]


def scan(artifacts: Artifacts, secrets: Iterable[Secret]) -> list[Leak]:
    """Every (artifact, secret) pair where some form of the secret occurs."""
    secrets = list(secrets)
    leaks = []
    for artifact, content in artifacts.items():
        data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) \
            else bytes(content)
        for secret in secrets:
            for form, needle in secret.forms().items():
                at = data.find(needle)
                if at >= 0:
                    around = data[max(0, at - 60): at + len(needle) + 60]
                    context = around.replace(needle, b"<" + form.encode() + b">") \
                        .replace(secret.core.encode(), b"<random core>")
                    leaks.append(Leak(artifact, secret.name, form,
                                      context.decode("utf-8", "replace")))
                    break  # one form is enough to report this pair
    return leaks


def describe(leaks: Sequence[Leak]) -> str:
    return f"{len(leaks)} leak(s):\n" + "\n".join(f"  {leak}" for leak in leaks)


def files_under(root: Path, label: str, skip: Iterable[Path] = ()) -> dict[str, bytes]:
    """Every regular file below `root` (not following symlinks), keyed `label/relpath`."""
    skipped = {p.resolve() for p in skip}
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.resolve() not in skipped:
            found[f"{label}/{path.relative_to(root)}"] = path.read_bytes()
    return found
