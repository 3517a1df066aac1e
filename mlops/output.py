"""Command results on stdout: human text, or exactly one JSON document with --json."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from mlops import ci
from mlops.errors import UsageError


class Output:
    def __init__(
        self, json_mode: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.emitted = False
        environ = os.environ if environ is None else environ
        # In CI: what the CI system shows beside the log (a job summary, annotations, ...).
        self.ci = ci.detect(environ, self.stderr)
        self.command = ""  # e.g. "rollout analyze"; set by the CLI once arguments parse

    def result(self, document: dict[str, Any], human: str | Callable[[], str],
               written: Callable[[], Mapping[str, str]] | None = None) -> str:
        """Print the command's result once: JSON under --json, else the human text
        (`human` may be a function, called only when the text is printed); what was
        printed. `written`, under --json: some of the document's values as the command
        wrote them already (`jsontext.dumps`)."""
        printed = self.render(document, human, written)
        self._write(printed)
        if self.command and self.ci:
            self.ci.result(self.command, document)
        return printed

    def render(self, document: dict[str, Any], human: str | Callable[[], str],
               written: Callable[[], Mapping[str, str]] | None = None) -> str:
        """What `result` prints for these: the JSON document under --json, else the text."""
        if self.json_mode:
            from mlops import jsontext  # here: `mlops --help` and human output never need it

            return jsontext.dumps(document, written and written()) + "\n"
        text = human() if callable(human) else human
        return text.rstrip("\n") + "\n" if text else ""

    def replay(self, printed: str) -> None:
        """A result `render` made earlier, printed again as it was (no CI reporter may
        be waiting for its document: see mlops.services.planmemo)."""
        assert not self.ci
        self._write(printed)

    def _write(self, printed: str) -> None:
        self.stdout.write(printed)
        self.stdout.flush()
        self.emitted = True

    def note(self, message: str) -> None:
        """A progress or warning line; never on stdout, so --json stays parseable."""
        self.stderr.write(message + "\n")
        self.stderr.flush()

    def annotate(self, message: str, file: str | None = None) -> None:
        """An error flagged on the CI run (and on `file`) where the CI system can show one."""
        if self.ci:
            self.ci.annotate(message, file)

    def error(self, message: str, exit_code: int) -> None:
        message = one_line(message)
        self.stderr.write(f"mlops: error: {message}\n")
        self.stderr.flush()
        if self.ci:
            self.ci.error(self.command or "", message, exit_code)
        if self.json_mode and not self.emitted:  # reported to CI just above, once
            self._write(self.render({"ok": False, "error": message, "exit_code": exit_code}, ""))


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def one_line(message: str) -> str:
    """`message` with its control characters written as escapes: an error is one line
    (a path may hold a newline), and text from a commit or a file never drives the
    terminal (an escape sequence). Tabs stay."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)


def user_target(path: Path, flag: str) -> Path:
    """Where to write a file the user named with `flag`, checked before any work starts.

    The write renames a temp file over the target, which would replace a
    device, a FIFO or a symlink with a regular file (as root, even /dev/full):
    a symlink is followed to what it names, and anything but a regular file
    (or nothing yet) is refused with one line.
    """
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_file():
        what = "a directory" if real.is_dir() else "not a regular file"
        shown = f"{path} (-> {real})" if real != path.absolute() else str(path)
        raise UsageError(f"{flag} {shown} is {what}; name a file to write")
    if real.parent.exists() and not real.parent.is_dir():
        raise UsageError(f"{flag} {path}: {real.parent} is not a directory")
    _check_writable(real.parent, path, flag)
    return real


def _check_writable(folder: Path, path: Path, flag: str) -> None:
    """A file can be made where the target goes (in its nearest existing folder, which
    the write creates the rest under): else the work would be done, images pushed, and
    only the record refused (`--output /proc/version`)."""
    import tempfile

    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write in {folder}: {exc.strerror}") from None


