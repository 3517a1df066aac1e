"""The canary analysis decision record, as a type: one parse, one dump, and how it reads
in a commit message. Pure; `mlops.services.decisions` keeps it on disk.

A record may come from another job (`rollout promote --analysis FILE`), and
its values reach a commit message, so `Decision.parse` checks every field it
uses before anything reads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops import trailers
from mlops.core.promotion import Message
from mlops.errors import ConfigError
from mlops.records import dataclass
from mlops.release import Release


@dataclass(frozen=True)
class Decision(Mapping[str, Any]):
    """One analysis of one canary step. Read as a mapping too: the record as written."""

    env: str
    release: str
    result: str  # pass | fail | inconclusive
    step: float
    percent: float
    finished_at: float
    doc: Mapping[str, Any]  # every field as recorded: metrics, measurements, revisions, ...

    @classmethod
    def parse(cls, data: Any, source: object, env: str) -> Decision:
        if not isinstance(data, dict) or data.get("env") != env:
            raise ConfigError(f"analysis record {source} is not an analysis of {env}")
        problem = _shape_problem(data)
        if problem:  # it may come from another job: its values reach a commit message
            raise ConfigError(f"analysis record {source} is malformed: {problem}")
        return cls(env, data["release"], data["result"], data["step"], data["percent"],
                   data["finished_at"], dict(data))

    def dump(self) -> dict[str, Any]:
        return dict(self.doc)

    def __getitem__(self, key: str) -> Any:
        return self.doc[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.doc)

    def __len__(self) -> int:
        return len(self.doc)


def _shape_problem(data: Mapping[str, Any]) -> str | None:
    if not all(isinstance(data.get(k), str) for k in ("release", "result")):
        return "release and result must be strings"
    if not all(_number(data.get(k)) for k in ("step", "percent", "finished_at")):
        return "step, percent and finished_at must be numbers"
    reasons, measurements = data.get("reasons", []), data.get("measurements", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        return "reasons must be a list of strings"
    if not isinstance(measurements, list) or not all(_measurement(m) for m in measurements):
        return "measurements must be a list of mappings with numbers (or null) as values"
    return _stop_problem(data)


def _stop_problem(data: Mapping[str, Any]) -> str | None:
    """The early-stop fields; a record written before they existed has none, and loads."""
    if not isinstance(data.get("stopped_early", False), bool):
        return "stopped_early must be true or false"
    if not isinstance(data.get("stop_reason"), str | None):
        return "stop_reason must be a string or null"
    if "measurements_planned" in data and not _number(data["measurements_planned"]):
        return "measurements_planned must be a number"
    if data.get("stopped_early") and not data.get("stop_reason"):
        return "a record that stopped early must say why (stop_reason)"
    return None


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return _numeric(value) and math.isfinite(value)


def _measurement(m: Any) -> bool:
    return isinstance(m, Mapping) and all(
        m.get(k) is None or _numeric(m[k]) for k in ("value", "baseline", "requests"))


def gates_text(gates: Sequence[Mapping[str, Any]]) -> str:
    return "".join(f"\n  {g['result']:<4} {g['gate']}: {g['detail']}" for g in gates)


def check_lines(decision: Mapping[str, Any]) -> list[str]:
    """One line per measurement: metric, verdict, value seen and the query as run."""
    lines = []
    for m in decision.get("measurements", []):
        value = "no data" if m.get("value") is None else f"{m['value']:.6g}"
        extra = "" if m.get("baseline") is None else f" baseline={m['baseline']:.6g}"
        extra += "" if m.get("requests") is None else f" requests={m['requests']:.6g}"
        lines.append(f"{m.get('metric')} #{m.get('index', '?')} {m.get('verdict')} "
                     f"value={value}{extra} query={m.get('query')}")
    return lines


def stopped_summary(decision: Mapping[str, Any]) -> str | None:
    """'stopped early after 2 of 10 measurements', or None for a full schedule."""
    if not decision.get("stopped_early"):
        return None
    planned = decision.get("measurements_planned")
    of = f" of {planned:g}" if _number(planned) else ""
    return f"stopped early after {len(decision.get('measurements', []))}{of} measurements"


def _analysis_trailers(decision: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if decision is None:
        return []
    head = (f"{decision.get('result')} at {decision.get('percent')}% "
            f"(revision {decision.get('revision')} vs {decision.get('baseline_revision')}, "
            f"{decision.get('finished')})")
    stopped = stopped_summary(decision)
    head += f", {stopped}" if stopped else ""
    return [(trailers.ANALYSIS, head)] + [(trailers.CHECK, line) for line in
                                          check_lines(decision)]


def _analysis_body(decision: Mapping[str, Any] | None) -> list[str]:
    if decision is None:
        return []
    lines = [f"Analysis: {decision.get('result')}"]
    lines += [f"  {reason}" for reason in decision.get("reasons", [])]
    return lines


def rollout_message(action: str, env: str, release: Release, state: Mapping[str, Any],
                    decision=None, baseline: str | None = None, hold: str | None = None,
                    previous: str | None = None,
                    provenance: Sequence[Mapping[str, str]] | None = None) -> Message:
    """How a canary commit reads: its subject, the split, the baseline and the analysis."""
    subjects = {
        "rollout-start": f"canary({env}): release {release.id} at {state['percent']}% "
                         f"(step 1/{len(state['steps'])})",
        "rollout-step": f"canary({env}): release {release.id} at {state['percent']}% "
                        f"(step {state['step']}/{len(state['steps'])})",
        "rollout-complete": f"canary({env}): release {release.id} at 100%",
        "rollout-abort": f"canary({env}): abort {previous}, back to release {release.id}",
    }
    extra = [(trailers.CANARY, str(state["percent"]))]
    if baseline or state.get("baseline"):
        extra.append((trailers.BASELINE, str(baseline or state.get("baseline"))))
    return Message(subject=subjects[action], hold_note=hold, previous=previous,
                   extra=extra + _analysis_trailers(decision),
                   body_extra=_analysis_body(decision), provenance=provenance)
