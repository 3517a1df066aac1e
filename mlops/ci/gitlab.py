"""GitLab CI: a command's result as a log section, a JUnit report and a dotenv report.

GitLab has no job summary; it shows three other things, all used here
(docs.gitlab.com: "CI/CD job logs", "Unit test reports", "artifacts:reports"):

- a collapsible section of the job log, delimited by `section_start` and
  `section_end` markers: one per result, on stderr, left open when it failed;
- JUnit XML (`artifacts:reports:junit`), shown in the pipeline's Tests tab and
  in merge requests: one file per command, one test case per build, gate,
  canary metric or validation problem, or for the command as a whole;
- a dotenv file (`artifacts:reports:dotenv`), whose variables later jobs get:
  MLOPS_COMMAND, MLOPS_OUTCOME, MLOPS_EXIT_CODE and the MLOPS_RELEASE_ID,
  MLOPS_ENVIRONMENT, MLOPS_COMMIT of the latest result that named them.

The files go to `$MLOPS_REPORTS_DIR` (default `mlops-reports`, relative to
`$CI_PROJECT_DIR`, where artifact paths are relative to). Rendering is pure;
a report that cannot be written is one warning line, never a failure.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from mlops.ci.document import failed

REPORTS_DIR_ENV = "MLOPS_REPORTS_DIR"
DEFAULT_REPORTS_DIR = "mlops-reports"
DOTENV_FILE = "mlops.env"
# Cleared on every write: they describe the latest command only.
PER_COMMAND = ("MLOPS_COMMAND", "MLOPS_OUTCOME", "MLOPS_EXIT_CODE")
FACTS = (("release", "MLOPS_RELEASE_ID"), ("env", "MLOPS_ENVIRONMENT"), ("commit", "MLOPS_COMMIT"))
# GitLab refuses a dotenv file over 5 KB; a handful of short values stays far below.
MAX_VALUE = 255
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters XML 1.0 cannot hold (ANSI colour codes in an error, say).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


class GitLabReporter:
    """The `CiReporter` for GitLab CI."""

    def __init__(self, environ: Mapping[str, str], stderr: TextIO) -> None:
        self.stderr = stderr
        folder = Path(environ.get(REPORTS_DIR_ENV) or DEFAULT_REPORTS_DIR)
        self.folder = Path(environ.get("CI_PROJECT_DIR") or ".") / folder
        self.reported: set[str] = set()  # commands whose result made a JUnit report

    def result(self, command: str, document: Mapping[str, Any]) -> None:
        found = checks(command, document)
        bad = failed(document)
        self.stderr.write(section(command, headline(document), found, int(time.time()), bad))
        self.stderr.flush()
        self._write_junit(command, junit(command, found))
        self.reported.add(command)
        outcome = {"MLOPS_OUTCOME": "failure" if bad else "success"}
        self._write_dotenv({"MLOPS_COMMAND": command, **outcome, **facts(document)})

    def error(self, command: str, message: str, exit_code: int) -> None:
        title = f"mlops {command}".strip()
        if command not in self.reported:  # else its result's failed cases already say it
            self._write_junit(command, junit(command, [Check(title, False, message)]))
        self._write_dotenv({"MLOPS_COMMAND": command, "MLOPS_OUTCOME": "error",
                            "MLOPS_EXIT_CODE": str(exit_code)})

    def annotate(self, message: str, file: str | None = None) -> None:
        """Nothing: GitLab has no annotations, and each problem is already a line
        of the log and a failed test case of the JUnit report."""

    def _write_junit(self, command: str, xml: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for path in _candidates(self.folder, f"junit-{_slug(command) or 'mlops'}"):
                try:
                    with open(path, "x", encoding="utf-8") as fh:  # never over another's
                        fh.write(xml)
                    return
                except FileExistsError:
                    continue
        except OSError as exc:
            self._warn("JUnit report", exc)

    def _write_dotenv(self, values: Mapping[str, str]) -> None:
        path = self.folder / DOTENV_FILE
        try:
            old = path.read_text(encoding="utf-8") if path.is_file() else ""
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_text(dotenv(old, values), encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._warn("dotenv report", exc)

    def _warn(self, what: str, exc: Exception) -> None:
        # A report is a courtesy; the command's result and exit code stand.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.stderr.write(f"mlops: warning: cannot write the GitLab {what} in "
                          f"{self.folder}: {reason}\n")
        self.stderr.flush()


def _candidates(folder: Path, stem: str) -> Iterator[Path]:
    """junit-build.xml, junit-build-2.xml, ...: one file per run of a command in a job."""
    yield folder / f"{stem}.xml"
    n = 2
    while True:
        yield folder / f"{stem}-{n}.xml"
        n += 1


def _slug(command: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", command.lower()).strip("_")


# -- pure rendering --------------------------------------------------------------


def checks(command: str, doc: Mapping[str, Any]) -> list[Check]:
    """What a result document checked, one entry each, and the command itself when
    nothing was checked or the result failed for a reason no entry shows (an abort,
    an inconclusive analysis): the report fails exactly when the result did."""
    found = [*_builds(doc), *_gates(doc), *_metrics(doc), *_problems(doc)]
    bad = failed(doc)
    if not found or (bad and all(c.ok for c in found)):
        found.append(Check(f"mlops {command}".strip(), not bad, headline(doc) if bad else ""))
    return found


def _entries(doc: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = doc.get(key)
    return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []


def _builds(doc: Mapping[str, Any]) -> Iterator[Check]:
    for b in _entries(doc, "builds"):
        ok = b.get("status") != "failed"
        where = f"{b.get('image')}@{b.get('digest')}" if b.get("digest") else str(b.get("image"))
        yield Check(f"build {b.get('component')}", ok, where if ok else str(b.get("error", "")))


def _gates(doc: Mapping[str, Any]) -> Iterator[Check]:
    for key in ("gates", "offline"):
        for g in _entries(doc, key):
            yield Check(f"gate {g.get('gate')}", g.get("result") == "pass",
                        str(g.get("detail", "")))


def _metrics(doc: Mapping[str, Any]) -> Iterator[Check]:
    for m in _entries(doc, "metrics"):  # a canary analysis; a promotion's metrics are a dict
        yield Check(f"canary metric {m.get('metric')}", m.get("result") == "pass",
                    str(m.get("detail", "")))


def _problems(doc: Mapping[str, Any]) -> Iterator[Check]:
    # GitLab keeps only the first of test cases with one name: number them.
    for i, p in enumerate(_entries(doc, "problems"), 1):
        yield Check(f"problem {i}: {p.get('where', '')}".rstrip(": "), False,
                    str(p.get("message", "")))


def headline(doc: Mapping[str, Any]) -> str:
    """`release r-1, env dev, ...`: the scalar facts a reader looks for first."""
    keys = ("release", "env", "status", "result", "percent", "state", "commit")
    return ", ".join(f"{k} {doc[k]}" for k in keys
                     if isinstance(doc.get(k), str | int | float) and not isinstance(doc[k], bool))


def section(command: str, head: str, found: list[Check], now: int, bad: bool) -> str:
    """A collapsible job-log section: header line, one line per check, end marker.
    Collapsed unless the result failed, so a failure is what the log shows open."""
    name = f"mlops_{_slug(command)}"
    option = "" if bad else "[collapsed=true]"
    header = f"mlops {command}: {'failed' if bad else 'ok'}" + (f" ({head})" if head else "")
    body = [f"  {'pass' if c.ok else 'FAIL'}  {c.name}" + (f": {c.detail}" if c.detail else "")
            for c in found]
    return (f"\x1b[0Ksection_start:{now}:{name}{option}\r\x1b[0K{_one_line(header)}\n"
            + "".join(_one_line(line) + "\n" for line in body)
            + f"\x1b[0Ksection_end:{now}:{name}\r\x1b[0K\n")


def _one_line(text: str) -> str:
    return " ".join(text.split("\n")).replace("\r", " ")


def junit(command: str, found: list[Check]) -> str:
    """A JUnit XML document: one test suite for the command, one test case per check."""
    suite_name = _xml(f"mlops {command}".strip())
    failures = sum(not c.ok for c in found)
    root = ET.Element("testsuites", tests=str(len(found)), failures=str(failures))
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(found)),
                          failures=str(failures))
    for c in found:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=_xml(c.name))
        if not c.ok:
            ET.SubElement(case, "failure", message=_xml(_one_line(c.detail))[:500]).text = \
                _xml(c.detail)
        elif c.detail:
            ET.SubElement(case, "system-out").text = _xml(c.detail)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _xml(text: str) -> str:
    return _NOT_XML.sub("?", text)


def facts(doc: Mapping[str, Any]) -> dict[str, str]:
    """The dotenv variables a result document provides (release, environment, commit)."""
    return {var: str(doc[key]) for key, var in FACTS
            if isinstance(doc.get(key), str | int) and not isinstance(doc[key], bool)}


def dotenv(old: str, values: Mapping[str, str]) -> str:
    """`old` (a dotenv file mlops wrote) updated with `values`, in GitLab's subset:
    KEY=VALUE lines, no quotes, comments, blank lines or line breaks in a value."""
    merged = {k: v for k, sep, v in (line.partition("=") for line in old.splitlines())
              if sep and _KEY.fullmatch(k) and k not in PER_COMMAND}
    merged.update({k: " ".join(v.split())[:MAX_VALUE] for k, v in values.items()})
    return "".join(f"{k}={v}\n" for k, v in merged.items())
