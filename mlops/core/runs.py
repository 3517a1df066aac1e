"""Recorded pipeline runs: the record's one parse and one dump, listing and comparing.

A run record is what `mlops run` keeps of each run in `.mlops/runs/<id>.json`:
the pipeline, environment and PipelineVersion, the images, the parameters
(the pipeline's defaults with the `--param` values over them), the metrics,
when it started and how long it took, the model URI and the source commit.
Its id, `<UTC yyyymmddThhmmss>-<6 hex>`, sorts by start time and becomes a
file name, so it is checked before it is ever joined to a path. Pure: the
clock, the random part of an id and the files are the run store's.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mlops.errors import MlopsError, UsageError
from mlops.records import dataclass, field

RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$")
FORMAT = "mlops.run/v1"
LIST_METRICS = 4  # metrics shown per line of `runs list`
MAX_CELL = 40  # a longer model URI is shown by its end in `runs compare`
# Ten years: longer than any pipeline run. A bigger duration is corrupt, not a number to
# print with 300 digits or to turn into milliseconds for MLflow (1e308 s overflows).
MAX_DURATION_S = 10 * 366 * 24 * 3600
Scalar = str | int | float | bool


class CorruptRun(MlopsError):
    """A run record that does not parse (exit 1)."""


def make_id(started: dt.datetime, token: str) -> str:
    """The id of a run that started at `started` (UTC), with 6 hex digits of `token`."""
    run_id = f"{started.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{token[:6]}"
    return check_id(run_id)


def is_id(text: str) -> bool:
    return bool(RUN_ID.match(text))


def check_id(text: str) -> str:
    """A run id, or a usage error (exit 2): it becomes a path, so no `/`, no `..`."""
    if not is_id(text):
        raise UsageError(f"{text!r} is not a run id (like 20250101T120000-1a2b3c; "
                         "`mlops runs list` shows them)")
    return text


@dataclass(frozen=True)
class RunRecord:
    id: str
    pipeline: str
    env: str
    version: str
    started: str  # UTC, ISO 8601 with a Z
    duration_s: float
    images: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Scalar] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    model_uri: str | None = None
    source_commit: str | None = None
    # Where MLflow has the run, when tracking is on: run_id, experiment_id, and the
    # registered model and version when one was registered. Absent otherwise.
    mlflow: Mapping[str, str] | None = None

    def dump(self) -> dict[str, Any]:
        doc = {
            "format": FORMAT, "id": self.id, "pipeline": self.pipeline, "env": self.env,
            "version": self.version, "started": self.started,
            "duration_s": self.duration_s,
            "images": dict(sorted(self.images.items())),
            "parameters": dict(sorted(self.parameters.items())),
            "metrics": dict(sorted(self.metrics.items())),
            "model_uri": self.model_uri, "source_commit": self.source_commit,
        }
        if self.mlflow is not None:
            doc["mlflow"] = dict(sorted(self.mlflow.items()))
        return doc


def utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(data: Any) -> RunRecord:
    """The record in a parsed JSON document, every field checked; else CorruptRun."""
    if not isinstance(data, dict):
        raise CorruptRun("not a JSON object")
    if data.get("format") != FORMAT:
        raise CorruptRun(f"format is {data.get('format')!r}, not {FORMAT!r}")
    run_id = _text(data, "id")
    if not is_id(run_id):
        raise CorruptRun(f"id {run_id!r} is not a run id")
    return RunRecord(
        id=run_id, pipeline=_text(data, "pipeline"), env=_text(data, "env"),
        version=_text(data, "version"), started=_started(data),
        duration_s=_duration(data),
        images=_mapping(data, "images", lambda v: isinstance(v, str)),
        parameters=_mapping(data, "parameters", _scalar),
        metrics=_mapping(data, "metrics", _finite),
        model_uri=_optional_text(data, "model_uri"),
        source_commit=_optional_text(data, "source_commit"),
        mlflow=_mlflow(data))


def _mlflow(data: dict) -> dict[str, str] | None:
    if data.get("mlflow") is None:
        return None
    return _mapping(data, "mlflow", lambda v: isinstance(v, str) and bool(v))


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise CorruptRun(f"{key} must be a non-empty string")
    return _printable(value, key)


def _printable(text: str, key: str) -> str:
    """Listed and compared in a terminal: a control character (a newline that forges a
    row, an escape sequence) makes the record corrupt, not a line of the table."""
    if _CONTROL.search(text):
        raise CorruptRun(f"{key} holds a control character: {text[:80]!r}")
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _optional_text(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise CorruptRun(f"{key} must be a string or null")
    if value is not None:
        _printable(value, key)
    return value


def _started(data: dict) -> str:
    text = _text(data, "started")
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CorruptRun(f"started {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise CorruptRun(f"started {text!r} has no time zone")
    return text


def _duration(data: dict) -> float:
    value = data.get("duration_s")
    if not (isinstance(value, int | float) and _finite(value) and 0 <= value <= MAX_DURATION_S):
        raise CorruptRun(f"duration_s must be a number of seconds from 0 to {MAX_DURATION_S} "
                         f"(ten years), got {value!r:.40}")
    return float(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _finite(value)


def _mapping(data: dict, key: str, valid: Callable[[Any], bool]) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise CorruptRun(f"{key} must be a JSON object")
    for name, item in value.items():
        _printable(name, f"{key} (a name)")
        # a parameter's value is what the runner passed, any text; the rest are names
        # and references a terminal shows
        if not valid(item) or (key != "parameters" and isinstance(item, str)
                               and _CONTROL.search(item)):
            raise CorruptRun(f"{key}.{name} has an invalid value {item!r}")
    return {name: float(v) if key == "metrics" else v for name, v in value.items()}


def effective_parameters(declared: Mapping[str, Any],
                         arguments: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """What a run ran with: each declared parameter's default, the arguments over them."""
    values: dict[str, Scalar] = {}
    for name, spec in declared.items():
        if "defaultValue" in spec:
            default = spec["defaultValue"]
            integral = spec.get("parameterType") == "NUMBER_INTEGER" and _finite(default)
            values[name] = int(default) if integral else default
    return {**values, **arguments}


def step_images(executor_images: Mapping[str, str]) -> dict[str, str]:
    """KFP executor label -> image, as step -> image (`exec-train` is `train`)."""
    return {label.removeprefix("exec-"): image for label, image in executor_images.items()}


def same_pipeline(name: str) -> str:
    """A pipeline's name, however it was spelled: its file's `_` as its resource name's `-`."""
    return name.replace("_", "-")


def select(records: Iterable[RunRecord], pipeline: str | None = None,
           env: str | None = None) -> list[RunRecord]:
    """The records of `pipeline` in `env` (each when given), newest first. `mlops run`
    records the name as typed: `batch_scoring` and `batch-scoring` are one pipeline."""
    wanted = None if pipeline is None else same_pipeline(pipeline)
    found = [r for r in records if (wanted is None or same_pipeline(r.pipeline) == wanted)
             and (env is None or r.env == env)]
    return sorted(found, key=lambda r: (r.started, r.id), reverse=True)


# --- comparing ---------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    name: str
    values: tuple[Any, ...]  # one per run, None where a run has no such entry

    @property
    def differs(self) -> bool:
        return any(_key(v) != _key(self.values[0]) for v in self.values)

    def dump(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values), "differs": self.differs}


def _key(value: Any) -> tuple[str, Any]:
    """Equality as a reader means it: 1 and 1.0 are equal, True and 1 are not."""
    return ("bool" if isinstance(value, bool) else type(value).__name__
            if not _number(value) else "number", value)


SECTIONS = ("run", "parameters", "metrics", "images")
RUN_FIELDS = ("pipeline", "env", "version", "started", "duration_s", "model_uri",
              "source_commit")


def compare(records: Sequence[RunRecord]) -> dict[str, list[Row]]:
    """Rows per section, the runs in the order given."""
    return {
        "run": [_row(records, name, _field(name)) for name in RUN_FIELDS],
        "parameters": _rows(records, lambda r: r.parameters),
        "metrics": _rows(records, lambda r: r.metrics),
        "images": _rows(records, lambda r: r.images),
    }


def _row(records: Sequence[RunRecord], name: str, value: Callable[[RunRecord], Any]) -> Row:
    return Row(name, tuple(value(r) for r in records))


def _rows(records: Sequence[RunRecord],
          section: Callable[[RunRecord], Mapping[str, Any]]) -> list[Row]:
    names = sorted({name for r in records for name in section(r)})
    return [_row(records, name, _entry(section, name)) for name in names]


def _field(name: str) -> Callable[[RunRecord], Any]:
    return lambda record: getattr(record, name)


def _entry(section: Callable[[RunRecord], Mapping[str, Any]],
           name: str) -> Callable[[RunRecord], Any]:
    return lambda record: section(record).get(name)


def comparison_document(records: Sequence[RunRecord]) -> dict[str, Any]:
    rows = compare(records)
    return {"runs": [r.id for r in records],
            **{section: [row.dump() for row in rows[section]] for section in SECTIONS},
            "differences": sum(row.differs for section in SECTIONS for row in rows[section])}


# --- text ----------------------------------------------------------------------------

def format_list(records: Sequence[RunRecord]) -> str:
    """One line a run: id, pipeline, env, start, duration, the first metrics."""
    if not records:
        return "no runs recorded (`mlops run PIPELINE --env ENV --local` records one)"
    rows = [[r.id, r.pipeline, r.env, r.started, _seconds(r.duration_s), _metrics_line(r)]
            for r in records]
    return _table(rows)


def _metrics_line(record: RunRecord) -> str:
    shown = sorted(record.metrics.items())[:LIST_METRICS]
    more = len(record.metrics) - len(shown)
    text = " ".join(f"{k}={v:.4g}" for k, v in shown)
    return text + (f" (+{more})" if more > 0 else "")


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def format_compare(records: Sequence[RunRecord]) -> str:
    """Parameters, metrics and images side by side; `*` marks a row whose values differ."""
    rows = compare(records)
    lines: list[list[str]] = [["", "", *(r.id for r in records)]]
    for section in SECTIONS:
        lines.append([" ", f"{section}:", *("" for _ in records)])
        for row in rows[section]:
            lines.append(["*" if row.differs else " ", f"  {row.name}",
                          *(_cell(section, row.name, v) for v in row.values)])
    return _table(lines) + "\n(* values differ)"


def _cell(section: str, name: str, value: Any) -> str:
    if value is None:
        return "-"
    if section == "images":
        return short_image(value)
    if name == "duration_s":
        return _seconds(value)
    if name == "source_commit":
        return value[:12]
    if name == "model_uri" and len(value) > MAX_CELL:
        return "..." + value[-(MAX_CELL - 3):]
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def short_image(ref: str) -> str:
    """`host/ns/train@sha256:<64 hex>` as `train@sha256:<12 hex>`: enough to tell apart."""
    name, at, digest = ref.partition("@")
    short = name.rsplit("/", 1)[-1]
    if at and digest.startswith("sha256:"):
        return f"{short}@{digest[:19]}"
    return short if not at else f"{short}@{digest}"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in rows)
