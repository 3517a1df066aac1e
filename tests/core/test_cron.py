"""Cron expressions in the form KFP's ScheduledWorkflow controller parses as meant.

The controller reads `cron` with robfig/cron v1.2.0's `cron.Parse` (kubeflow/pipelines
7b70c7b95f6832772efd6fd0029a4024491a0f44, backend/src/crd/controller/scheduledworkflow/
util/cron_schedule.go; go.mod: github.com/robfig/cron v1.2.0), whose parser.go takes
seconds first (Second | Minute | Hour | Dom | Month | DowOptional | Descriptor), so a
crontab line needs a leading 0; its spec.go bounds and getRange rules are checked here.
"""

from __future__ import annotations

import pytest

from mlops.core.cron import CronError, to_kfp


@pytest.mark.parametrize(("given", "kfp"), [
    ("0 2 * * *", "0 0 2 * * *"),              # a crontab line: 02:00, not minute 2 hourly
    ("*/15 * * * *", "0 */15 * * * *"),
    ("30 0 2 * * *", "30 0 2 * * *"),          # six fields: KFP's own form, as is
    ("0  3\t* *   mon-fri", "0 0 3 * * mon-fri"),  # whitespace as strings.Fields splits
    ("0 0 12 ? JAN-mar Mon-FRI", "0 0 12 ? JAN-mar Mon-FRI"),  # names in any case, '?'
    ("0 0 1,15 * *", "0 0 0 1,15 * *"),
    ("0 0 5/10 * *", "0 0 0 5/10 * *"),        # N/step means N-max/step
    ("0 0 31 4,6 mon", "0 0 0 31 4,6 mon"),    # both day fields set: either fires
    ("0 0 29 2 *", "0 0 0 29 2 *"),            # leap years come within robfig's 5 years
    ("@daily", "@daily"),
    ("@hourly", "@hourly"),
])
def test_accepted_expressions_in_kfp_form(given, kfp):
    assert to_kfp(given) == kfp


@pytest.mark.parametrize(("given", "problem"), [
    ("0 2 * *", "has 4 fields; give 5"),
    ("0 0 0 2 * * *", "has 7 fields"),
    ("", "has 0 fields"),
    ("60 * * * *", "minute field '60' is outside 0-59"),
    ("0 24 * * *", "hour field '24' is outside 0-23"),
    ("0 0 0 * *", "day of month field '0' is outside 1-31"),
    ("0 0 * 13 *", "month field '13' is outside 1-12"),
    ("0 0 * * 7", "day of week field '7' is outside 0-6 (Sunday is 0 or sun)"),
    ("0 0 * * sunday", "'sunday' is not a number or a name (sun, mon"),
    ("0 0 * foo *", "'foo' is not a number or a name (jan, feb"),
    ("1,,2 * * * *", "minute field '1,,2' has an empty list item"),
    ("*-5 * * * *", "minute field '*-5': '*' takes no range"),
    ("1-2-3 * * * *", "has more than one '-'"),
    ("*/5/2 * * * *", "has more than one '/'"),
    ("*/0 * * * *", "the step must be at least 1"),
    ("+5 * * * *", "'+5' is not a number"),
    ("30-10 * * * *", "range starts after it ends"),
    ("0 0 30 2 *", "day of month '30' never occurs in month '2'"),
    ("0 0 31 4,6,9,11 *", "never occurs"),
    ("@every 1h", "write `interval:`"),
    ("@fortnightly", "unknown descriptor '@fortnightly'"),
])
def test_refused_expressions(given, problem):
    with pytest.raises(CronError) as caught:
        to_kfp(given)
    assert problem in caught.value.message


@pytest.mark.parametrize(("field", "index", "values", "star"), [
    ("5/20", 1, {5, 25, 45}, False),        # N/step: N to the maximum, by step (getRange)
    ("*/20", 1, {0, 20, 40}, True),         # '*' sets robfig/cron's star bit, steps or not
    ("mon-wed,fri", 5, {1, 2, 3, 5}, False),
    ("?", 3, set(range(1, 32)), True),
])
def test_the_values_a_field_selects(field, index, values, star):
    """What the day-of-month check (robfig/cron's dayMatches) reasons about."""
    from mlops.core.cron import FIELDS, _field

    assert _field(field, FIELDS[index]) == (values, star)
