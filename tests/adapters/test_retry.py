"""The one retry policy: attempts, waits and callbacks, and tenacity loaded only on failure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops.adapters.retry import with_retries


class Flaky(Exception):
    pass


def failing(times: int, error: type[BaseException] = Flaky):
    calls = []

    def fn():
        calls.append(len(calls) + 1)
        if len(calls) <= times:
            raise error(f"failure {len(calls)}")
        return f"done after {len(calls)}"

    return fn, calls


def transient(exc: BaseException) -> bool:
    return isinstance(exc, Flaky)


def test_transient_failures_are_retried_and_reported_in_order():
    fn, calls = failing(2)
    seen = []
    result = with_retries(fn, transient, attempts=5, initial=0.001, max_wait=0.002,
                          on_retry=lambda n, exc: seen.append((n, str(exc))))
    assert result == "done after 3"
    assert calls == [1, 2, 3]
    assert seen == [(1, "failure 1"), (2, "failure 2")]


def test_the_last_transient_error_escapes_when_attempts_run_out():
    fn, calls = failing(10)
    with pytest.raises(Flaky, match="failure 3"):
        with_retries(fn, transient, attempts=3, initial=0.001, max_wait=0.002)
    assert calls == [1, 2, 3]


def test_a_lasting_error_escapes_at_once():
    fn, calls = failing(1, ValueError)
    with pytest.raises(ValueError, match="failure 1"):
        with_retries(fn, transient, attempts=5, initial=0.001)
    assert calls == [1]


def test_one_attempt_means_no_retry():
    fn, calls = failing(1)
    with pytest.raises(Flaky):
        with_retries(fn, transient, attempts=1)
    assert calls == [1]


def test_a_second_failure_that_is_not_transient_stops_the_retries():
    calls = []

    def fn():
        calls.append(1)
        raise (Flaky if len(calls) == 1 else KeyError)("x")

    with pytest.raises(KeyError):
        with_retries(fn, transient, attempts=5, initial=0.001)
    assert len(calls) == 2


@pytest.mark.parametrize(("fails", "loaded"), [(0, False), (1, True)])
def test_tenacity_is_imported_only_after_a_failure(fails, loaded):
    code = (
        "import sys\n"
        "from mlops.adapters.retry import with_retries\n"
        f"left = [{fails}]\n"
        "def fn():\n"
        "    if left[0]:\n"
        "        left[0] -= 1\n"
        "        raise OSError('once')\n"
        "    return 1\n"
        "with_retries(fn, lambda e: isinstance(e, OSError), attempts=3, initial=0.001)\n"
        "print('tenacity' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == str(loaded)
