"""`utctime.at`: RFC 3339 for every date it can write, None for the rest (a commit's
date is whatever its committer wrote)."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops import utctime


@pytest.mark.parametrize("epoch", [0, 1, -1, 981173106, 1_700_000_000, 253402300799,
                                   -62135596800, 1_700_000_000.9])
def test_a_date_in_range_is_what_datetime_writes(epoch):
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    assert utctime.at(epoch) == f"{moment.year:04d}-{moment:%m-%dT%H:%M:%SZ}"


def test_the_edges():
    assert utctime.at(0) == "1970-01-01T00:00:00Z"
    assert utctime.at(-62135596800) == "0001-01-01T00:00:00Z"  # four digits, as RFC 3339 has
    assert utctime.at(-30610310400) == "0999-12-31T00:00:00Z"
    assert utctime.at(253402300799) == "9999-12-31T23:59:59Z"


@pytest.mark.parametrize("epoch", [253402300800, 99999999999999, 10**30, -62135596801,
                                   -(10**30)])
def test_a_date_past_four_digit_years_is_none(epoch):
    assert utctime.at(epoch) is None
