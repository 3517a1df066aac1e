"""Bounded retries with exponential backoff and jitter, the one policy for all adapters."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def with_retries(
    fn: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    attempts: int,
    initial: float = 0.2,
    max_wait: float = 4.0,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Call `fn` until it succeeds, a non-transient error escapes, or attempts run out.

    When attempts run out the last transient error is raised as it was. The first
    attempt runs before tenacity is imported (~15 ms, a sixth of a cached build
    plan's imports): only a failure needs it. tenacity then meets that failure
    again as its own first attempt, so the waits and `on_retry` calls are the
    same as if it had run the first attempt itself.
    """
    try:
        return fn()
    except BaseException as exc:
        if attempts <= 1 or not is_transient(exc):
            raise
        first: BaseException | None = exc

    def again() -> T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return fn()

    from tenacity import (
        RetryError,
        Retrying,
        retry_if_exception,
        stop_after_attempt,
        wait_random_exponential,
    )

    def before_sleep(state) -> None:
        if on_retry and state.outcome is not None:
            on_retry(state.attempt_number, state.outcome.exception())

    try:
        for attempt in Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(max(1, attempts)),
            # Full jitter: racing clients spread out instead of retrying in lockstep.
            wait=wait_random_exponential(multiplier=initial, max=max_wait),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                return again()
    except RetryError as exc:  # only without reraise; kept for safety
        raise exc.last_attempt.exception() from None  # type: ignore[misc]
    raise AssertionError("unreachable")
