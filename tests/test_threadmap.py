"""mlops.threadmap against the executor map it stands in for."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlops.threadmap import thread_map


def executor_map(fn, items, workers):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


@pytest.mark.parametrize("mapper", [executor_map, thread_map], ids=["executor", "threadmap"])
def test_results_keep_the_items_order(mapper):
    def slow_for_small(n: int) -> int:
        time.sleep(0.002 * (10 - n))  # the first items finish last
        return n * n

    assert mapper(slow_for_small, range(10), 4) == [n * n for n in range(10)]
    assert mapper(slow_for_small, [], 4) == []


@pytest.mark.parametrize("mapper", [executor_map, thread_map], ids=["executor", "threadmap"])
def test_the_first_failure_in_the_items_order_is_raised(mapper):
    def fail_on_odd(n: int) -> int:
        if n % 2:
            time.sleep(0.05 if n == 1 else 0)  # item 3 fails first in time, item 1 first in order
            raise ValueError(f"item {n}")
        return n

    with pytest.raises(ValueError, match="item 1"):
        mapper(fail_on_odd, range(6), 3)


@pytest.mark.parametrize("mapper", [executor_map, thread_map], ids=["executor", "threadmap"])
def test_no_item_starts_after_a_failure(mapper):
    """A registry that is down costs one round of attempts, not one per `workers` images."""
    ran: list[int] = []

    def down(n: int) -> None:
        ran.append(n)
        time.sleep(0.02)
        raise ConnectionError(f"item {n}")

    with pytest.raises(ConnectionError, match="item 0"):
        mapper(down, range(80), 8)
    assert len(ran) <= 16, len(ran)  # the first round, and what started while it failed


def test_no_more_threads_than_workers_run_at_once():
    running, most = 0, 0
    lock = threading.Lock()

    def track(_: int) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    thread_map(track, range(12), workers=3)
    assert most == 3
    thread_map(track, range(12), workers=0)  # as few as one, never none
    assert most == 3


def test_it_loads_no_logging():
    probe = "import sys, mlops.threadmap; print('logging' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
