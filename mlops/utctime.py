"""A moment as mlops prints it: RFC 3339 in UTC, to the second (`2026-12-06T13:45:00Z`)."""

from __future__ import annotations

import time

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def at(epoch: int | float) -> str | None:
    """`epoch` seconds as RFC 3339, or None when it is no year from 1 to 9999.

    A commit's date is whatever its committer wrote (`GIT_COMMITTER_DATE=@99999999999999`
    makes one in the year 3170843), and RFC 3339 has four-digit years.
    """
    try:
        moment = time.gmtime(epoch)
    except (OverflowError, OSError, ValueError):
        return None
    if not 1 <= moment.tm_year <= 9999:
        return None
    # not %Y: glibc writes the year 999 as "999", and RFC 3339 has four digits
    return f"{moment.tm_year:04d}-" + time.strftime(FORMAT.removeprefix("%Y-"), moment)
