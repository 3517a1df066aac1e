"""SSH signatures (`ssh-keygen -Y`): the only module that runs ssh-keygen.

Provenance is signed with the same kind of key and checked against the same
allowed-signers file (git's `gpg.ssh.allowedSignersFile` format) as approvals,
so one trust root covers both. Every call is an argument list with a timeout,
never a shell. ssh-keygen never sees a terminal or an askpass program: a key
that needs a passphrase fails at once instead of waiting for one. Messages
name files and ssh-keygen's one-line reason, never key material.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops.errors import ConfigError

TIMEOUT = 30.0  # seconds; signing or verifying a few KiB takes milliseconds


def sign(data: bytes, key_path: Path, namespace: str) -> str:
    """The armored signature (`-----BEGIN SSH SIGNATURE-----`) of `data` by the key.

    The data goes through a file in a private temp dir, not stdin: ssh-keygen
    reads a passphrase from stdin when it has no terminal, and must not be fed
    the data as one. stdin is empty, so an encrypted key fails cleanly.
    """
    check_key(key_path)
    with _private_dir() as tmp:
        message = tmp / "message"
        message.write_bytes(data)
        proc = _run(["-Y", "sign", "-f", str(key_path), "-n", namespace, str(message)])
        signature = tmp / "message.sig"
        if proc.returncode != 0 or not signature.is_file():
            raise ConfigError(_sign_failure(key_path, proc.stderr))
        return signature.read_text(encoding="ascii")


def find_principals(data_sig: str, allowed_signers: Path) -> list[str]:
    """The principals `allowed_signers` lists for the key that made `data_sig`.

    This only looks the key up; it says nothing about what was signed. An
    unlisted key, or text that is not an SSH signature, gives [].
    """
    _check_signers(allowed_signers)
    with _signature_file(data_sig) as sig:
        proc = _run(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)])
    if proc.returncode != 0:
        return []
    names = (name.strip() for line in proc.stdout.splitlines() for name in line.split(","))
    return list(dict.fromkeys(name for name in names if name))


def verify(data: bytes, signature: str, allowed_signers: Path, principal: str,
           namespace: str) -> bool:
    """Whether `signature` is `principal`'s signature of `data` in `namespace`."""
    _check_signers(allowed_signers)
    with _signature_file(signature) as sig:
        proc = _run(["-Y", "verify", "-f", str(allowed_signers), "-I", principal,
                     "-n", namespace, "-s", str(sig)], stdin=data)
    return proc.returncode == 0


def verified_principal(data: bytes, signature: str, allowed_signers: Path,
                       principals: Collection[str], namespace: str) -> str | None:
    """The first of `principals` the signature verifies for, or None.

    The candidates are the principals listed for the signing key, in the
    file's order. A listed wildcard (`*@example.com`) lets every wanted
    principal be tried: `verify` matches patterns the way ssh does.
    """
    for candidate in candidates(find_principals(signature, allowed_signers), principals):
        if verify(data, signature, allowed_signers, candidate, namespace):
            return candidate
    return None


def candidates(listed: list[str], wanted: Collection[str]) -> list[str]:
    """The wanted principals worth a `verify`, given those listed for the key."""
    if any(ch in name for name in listed for ch in "*?!"):
        return sorted(wanted)
    return [name for name in listed if name in wanted]


# -- plumbing -------------------------------------------------------------

_KEYGEN: list[str] = []  # the absolute path found first, kept for the process's life


def keygen() -> str:
    """The absolute path of ssh-keygen, looked up on PATH once per process.

    A promotion asks before any pipeline code from the branch runs
    (`Workspace`), so a program that code puts on PATH later is never used
    to verify a signature, by git (`gpg.ssh.program`) or by this module.
    """
    if not _KEYGEN:
        exe = shutil.which("ssh-keygen")
        if exe is None:
            raise ConfigError("ssh-keygen not found on PATH; install OpenSSH (8.2 or newer)")
        _KEYGEN.append(os.path.abspath(exe))
    return _KEYGEN[0]


def _run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    exe = keygen()
    env = {**os.environ, "SSH_ASKPASS_REQUIRE": "never", "LC_ALL": "C"}
    env.pop("DISPLAY", None)
    try:
        proc = subprocess.run([exe, *args], input=stdin, capture_output=True, env=env,
                              timeout=TIMEOUT, start_new_session=True, check=False)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"ssh-keygen {args[0]} {args[1]} did not finish within "
                          f"{TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise ConfigError(f"could not run ssh-keygen: {exc.strerror or exc}") from None
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"))


def check_key(key_path: Path, named: str = "signing key") -> None:
    """A key file ssh-keygen can read; `named` says where the user gave it (a flag)."""
    if not key_path.is_file():
        raise ConfigError(f"{named} {key_path} does not exist or is not a file")
    if not os.access(key_path, os.R_OK):
        raise ConfigError(f"{named} {key_path} is not readable")


def _check_signers(allowed_signers: Path) -> None:
    if not allowed_signers.is_file() or not os.access(allowed_signers, os.R_OK):
        raise ConfigError(f"allowed signers file {allowed_signers} does not exist or "
                          "is not readable")


def _sign_failure(key_path: Path, stderr: str) -> str:
    if "passphrase" in stderr.lower():
        return (f"signing key {key_path} is protected by a passphrase; mlops signs without "
                "a terminal: use an unencrypted key, or the .pub of a key in ssh-agent")
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and "on standard input" not in line]
    reason = lines[-1][:200] if lines else "no reason given"
    return f"ssh-keygen could not sign with {key_path}: {reason}"


@contextmanager
def _private_dir() -> Iterator[Path]:
    """A temp dir only this user can read, removed with everything in it."""
    path = Path(tempfile.mkdtemp(prefix="mlops-sshsig-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _signature_file(signature: str) -> Iterator[Path]:
    """ssh-keygen reads signatures only from files."""
    with _private_dir() as tmp:
        path = tmp / "data.sig"
        path.write_text(signature, encoding="utf-8")
        yield path
