"""Cron expressions as Kubeflow Pipelines' ScheduledWorkflow controller reads them.

The controller parses `spec.trigger.cronSchedule.cron` with `cron.Parse` of
github.com/robfig/cron v1.2.0 (kubeflow/pipelines
backend/src/crd/controller/scheduledworkflow/util/cron_schedule.go; go.mod pins
v1.2.0). That parser (parser.go, `defaultParser`: Second | Minute | Hour | Dom
| Month | DowOptional | Descriptor) reads the FIRST field as seconds: the
crontab line `0 2 * * *` means "at second 0 of minute 2 of every hour" to it,
not "at 02:00". So mlops takes either

- 5 fields, a standard crontab line (minute hour day-of-month month
  day-of-week), and gives KFP `0 <the five fields>`; or
- 6 fields, seconds first, exactly as KFP reads them; or
- a descriptor robfig/cron knows: @yearly, @annually, @monthly, @weekly,
  @daily, @midnight, @hourly.

Each field is checked as robfig/cron's `getRange` checks it (bounds from
spec.go: seconds and minutes 0-59, hours 0-23, day of month 1-31, month 1-12
or jan-dec, day of week 0-6 or sun-sat; `*` and `?`; `a-b`, `a/n` meaning
`a-max/n`, `*/n`; lists with `,`). A few forms robfig/cron lets through are
refused as typos: empty list items (`1,,2`), `*-5`, signs (`+5`). `@every D`
is refused too: write `interval:` instead, which KFP runs as a periodic
schedule. Pure: no I/O.
"""

from __future__ import annotations

import re

from mlops.errors import ConfigError
from mlops.records import dataclass

DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MONTHS = {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_DIGITS = re.compile(r"^\d+$")
_LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31,
                  11: 30, 12: 31}


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


FIELDS = (
    Field("second", 0, 59),
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day of month", 1, 31),
    Field("month", 1, 12, MONTHS),
    Field("day of week", 0, 6, DAYS),
)


class CronError(ConfigError):
    """What is wrong with a cron expression; the caller prefixes where it came from."""


def to_kfp(expression: str) -> str:
    """`expression` in the form KFP's controller parses as meant (see the module doc)."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        return _descriptor(text)
    fields = text.split(" ") if text else []
    if len(fields) == 5:
        fields = ["0", *fields]
    elif len(fields) != 6:
        raise CronError(f"has {len(fields)} fields; give 5 (minute hour day-of-month month "
                        "day-of-week) or 6 (seconds first, as Kubeflow Pipelines reads them)")
    parsed = [_field(value, spec) for value, spec in zip(fields, FIELDS, strict=True)]
    _refuse_impossible_dates(parsed, fields)
    return " ".join(fields)


def _descriptor(text: str) -> str:
    if text in DESCRIPTORS:
        return text
    if text.startswith("@every"):
        raise CronError(f"{text!r}: write `interval:` for a fixed period instead")
    raise CronError(f"unknown descriptor {text!r} (known: {', '.join(DESCRIPTORS)})")


def _field(value: str, spec: Field) -> tuple[set[int], bool]:
    """The values `value` selects, and whether it used `*` or `?` (robfig/cron's star bit)."""
    selected: set[int] = set()
    star = False
    for part in value.split(","):
        if not part:
            raise CronError(f"{spec.name} field {value!r} has an empty list item")
        values, part_star = _range(part, spec)
        selected |= values
        star = star or part_star
    return selected, star


def _range(part: str, spec: Field) -> tuple[set[int], bool]:
    range_and_step = part.split("/")
    if len(range_and_step) > 2:
        raise CronError(f"{spec.name} field {part!r} has more than one '/'")
    low_high = range_and_step[0].split("-")
    star = low_high[0] in ("*", "?")
    if star:
        if len(low_high) > 1:
            raise CronError(f"{spec.name} field {part!r}: '*' takes no range")
        start, end = spec.low, spec.high
    else:
        if len(low_high) > 2:
            raise CronError(f"{spec.name} field {part!r} has more than one '-'")
        start = _number(low_high[0], spec)
        end = _number(low_high[1], spec) if len(low_high) == 2 else start
    step = 1
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], Field(f"{spec.name} step", 0, 1 << 31))
        if len(low_high) == 1:  # "N/step" means "N-max/step"
            end = spec.high
    _check_bounds(part, spec, start, end, step)
    return set(range(start, end + 1, step)), star


def _check_bounds(part: str, spec: Field, start: int, end: int, step: int) -> None:
    if start < spec.low or end > spec.high:
        sunday = " (Sunday is 0 or sun)" if spec.names is DAYS else ""
        raise CronError(f"{spec.name} field {part!r} is outside {spec.low}-{spec.high}{sunday}")
    if start > end:
        raise CronError(f"{spec.name} field {part!r}: range starts after it ends")
    if step == 0:
        raise CronError(f"{spec.name} field {part!r}: the step must be at least 1")


def _number(text: str, spec: Field) -> int:
    if spec.names and text.lower() in spec.names:
        return spec.names[text.lower()]
    if not _DIGITS.match(text):
        named = f" or a name ({', '.join(spec.names)})" if spec.names else ""
        raise CronError(f"{spec.name} field: {text!r} is not a number{named}")
    return int(text)


def _refuse_impossible_dates(parsed: list[tuple[set[int], bool]], fields: list[str]) -> None:
    """A day of month no chosen month has never fires (robfig/cron gives up after 5 years).

    robfig/cron's `dayMatches` needs both day fields to match when either used `*`
    or `?`, and either one otherwise; only the first case can be impossible."""
    (days, days_star), (months, _), (_, weekdays_star) = parsed[3], parsed[4], parsed[5]
    if not (days_star or weekdays_star):
        return
    longest = max(_LONGEST_MONTH[m] for m in months)
    if min(days) > longest:
        raise CronError(f"day of month {fields[3]!r} never occurs in month {fields[4]!r}: "
                        "the schedule would never fire")
