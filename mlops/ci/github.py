"""GitHub Actions: a command's result as a Markdown job summary, errors as annotations.

Pure functions over the same document a command prints with `--json`, so
the summary shows exactly what the JSON says: built images and digests, the
release, gate and analysis tables, validation problems. `GitHubReporter`
appends the summary to `$GITHUB_STEP_SUMMARY` when that is set, and prints
`::error::` lines when `$GITHUB_ACTIONS` is `true`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

from mlops.ci.document import failed


class GitHubReporter:
    """The `CiReporter` for GitHub Actions."""

    def __init__(self, environ: Mapping[str, str], stderr: TextIO) -> None:
        self.annotations = environ.get("GITHUB_ACTIONS") == "true"
        self.summary_file = environ.get("GITHUB_STEP_SUMMARY") or None
        self.stderr = stderr

    def result(self, command: str, document: Mapping[str, Any]) -> None:
        self._summarize(markdown(command, document))

    def error(self, command: str, message: str, exit_code: int) -> None:
        self.annotate(message)
        self._summarize(error_markdown(command, message, exit_code))

    def annotate(self, message: str, file: str | None = None) -> None:
        if self.annotations:
            self.stderr.write(annotation(message, file) + "\n")
            self.stderr.flush()

    def _summarize(self, text: str) -> None:
        if not self.summary_file:
            return
        try:
            with open(self.summary_file, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:  # a summary is a courtesy; the command's result stands
            self.stderr.write(f"mlops: warning: cannot write the job summary: {exc.strerror}\n")
            self.stderr.flush()


def annotation(message: str, file: str | None = None) -> str:
    """A `::error` workflow command; GitHub's escaping keeps it one line."""
    props = f" file={_escape_property(file)}" if file else ""
    return f"::error{props}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_markdown(command: str, message: str, exit_code: int) -> str:
    title = f"mlops {command}".strip()
    return f"### ❌ `{title}` failed (exit {exit_code})\n\n{_cell(message)}\n\n"


def markdown(command: str, doc: Mapping[str, Any]) -> str:
    """The job-summary section for one command's result document."""
    parts = [f"### {_icon(doc)} `mlops {command}`", _headline(doc)]
    for render in _SECTIONS:
        section = render(doc)
        if section:
            parts.append(section)
    return "\n\n".join(p for p in parts if p) + "\n\n"


def _icon(doc: Mapping[str, Any]) -> str:
    return "❌" if failed(doc) else "✅"


def _headline(doc: Mapping[str, Any]) -> str:
    facts = [(label, doc.get(key)) for key, label in (
        ("release", "release"), ("env", "environment"), ("status", "status"),
        ("result", "analysis"), ("percent", "canary %"), ("state", "state"),
        ("approver", "approved by"), ("aborted", "aborted"), ("commit", "commit"),
        ("source_commit", "source commit"))]
    shown = [f"**{label}:** `{_short(value)}`" for label, value in facts
             if isinstance(value, str | int | float) and not isinstance(value, bool)]
    return " · ".join(shown)


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else text


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) if len(lines) > 2 else ""


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _builds(doc: Mapping[str, Any]) -> str:
    return _table(["component", "status", "image", "digest"], (
        (b.get("component"), b.get("status", "built" if b.get("built") else "reused"),
         f"`{b.get('image')}`", f"`{b.get('digest')}`")
        for b in doc.get("builds") or [] if isinstance(b, Mapping)))


def _images(doc: Mapping[str, Any]) -> str:
    images = doc.get("images")
    if not isinstance(images, Mapping):
        return ""
    return _table(["component", "image"], ((n, f"`{ref}`") for n, ref in sorted(images.items())))


def _gates(doc: Mapping[str, Any]) -> str:
    rows = [(g.get("gate"), g.get("result"), g.get("detail"))
            for key in ("gates", "offline") for g in doc.get(key) or [] if isinstance(g, Mapping)]
    return _table(["gate", "result", "detail"], rows)


def _analysis(doc: Mapping[str, Any]) -> str:
    rows = [(m.get("metric"), m.get("result"), m.get("detail"))
            for m in doc.get("metrics") or [] if isinstance(m, Mapping)]
    return _table(["canary metric", "result", "detail"], rows)


def _metric_values(doc: Mapping[str, Any]) -> str:
    values = doc.get("metrics")
    if not isinstance(values, Mapping):
        return ""
    return _table(["evaluation metric", "value"], sorted(values.items()))


def _steps(doc: Mapping[str, Any]) -> str:
    rows = [(s.get("percent"), s.get("analysis"), "; ".join(s.get("reasons") or []))
            for s in doc.get("steps") or [] if isinstance(s, Mapping)]
    return _table(["canary %", "analysis", "reasons"], rows)


def _pipelines(doc: Mapping[str, Any]) -> str:
    rows = [(p.get("pipeline"), p.get("status"), f"`{p.get('version')}`")
            for p in doc.get("pipelines") or [] if isinstance(p, Mapping)]
    return _table(["pipeline", "status", "version"], rows)


def _shards(doc: Mapping[str, Any]) -> str:
    """A fan-out plan's shards (`mlops build --plan`), as the matrix will run them."""
    matrix = doc.get("matrix")
    include = matrix.get("include") if isinstance(matrix, Mapping) else None
    return _table(["shard", "components", "size"], (
        (e.get("shard"), e.get("components"), e.get("size"))
        for e in include or [] if isinstance(e, Mapping)))


def _problems(doc: Mapping[str, Any]) -> str:
    return "\n".join(f"- {_cell(p.get('message'))}" for p in doc.get("problems") or []
                     if isinstance(p, Mapping))


_SECTIONS: tuple[Callable[[Mapping[str, Any]], str], ...] = (
    _builds, _shards, _images, _pipelines, _metric_values, _gates, _analysis, _steps,
    _problems)
