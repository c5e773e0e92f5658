"""When to try again: exponential backoff with full jitter, ``Retry-After``, and the budget."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pipeline.download.policy import DownloadPolicy

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
NOT_YET_STATUSES = frozenset({403, 404})


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Full jitter: a uniform delay in ``[0, min(cap, base * 2**attempt))``.

    ``attempt`` counts failures so far, starting at 0. Full jitter spreads the
    retries of many concurrent downloads that failed together.
    """
    ceiling = min(cap, base * (2.0 ** min(attempt, 62)))
    return ceiling * rng()


def parse_retry_after(
    value: str | None, *, cap: float, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date), capped.

    Returns ``None`` when the header is absent or unreadable, so the caller falls
    back to its own backoff; a date in the past means "now" (0 seconds).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), cap)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return min(max((when - current).total_seconds(), 0.0), cap)


class RetryBudget:
    """Counts failed attempts and decides whether, and after how long, to try again.

    ``max_attempts`` and ``max_retry_time`` bound failures *since the last
    progress*: an attempt that got further into the file than any before it
    resets both, so a long file over a flaky link still completes, while a
    server that never gets further is given up on. 403/404 answers have their
    own clock, ``not_found_grace``, since the first one.
    """

    def __init__(self, policy: DownloadPolicy, *, clock: Callable[[], float] = time.monotonic):
        self._policy = policy
        self._clock = clock
        self.failures = 0
        self._stalled_since: float | None = None
        self._not_found_since: float | None = None
        self._not_found_count = 0
        self._high_water = 0

    def progressed(self, offset: int) -> None:
        """Record how far into the file the transfer got; new ground resets the budget."""
        if offset > self._high_water:
            self._high_water = offset
            self.failures = 0
            self._stalled_since = None

    def next_delay(self, *, retry_after: float | None = None) -> float | None:
        """Register a transient failure; the delay before the next attempt, or ``None`` to stop."""
        now = self._clock()
        if self._stalled_since is None:
            self._stalled_since = now
        self.failures += 1
        if self.failures >= self._policy.max_attempts:
            return None
        delay = backoff_delay(
            self.failures - 1, base=self._policy.backoff_base, cap=self._policy.backoff_cap
        )
        if retry_after is not None:
            delay = max(delay, retry_after)
        if now + delay - self._stalled_since > self._policy.max_retry_time:
            return None
        return delay

    def not_found_delay(self) -> float | None:
        """Register a 403/404; the delay before asking again, or ``None`` once the grace is over."""
        now = self._clock()
        if self._not_found_since is None:
            self._not_found_since = now
        waited = now - self._not_found_since
        if waited >= self._policy.not_found_grace:
            return None
        attempt = min(self._not_found_count, 30)
        self._not_found_count += 1
        delay = backoff_delay(attempt, base=self._policy.backoff_base, cap=self._policy.backoff_cap)
        # Ask once more right at the end of the grace period rather than overshoot it.
        return min(max(delay, self._policy.backoff_base / 2), self._policy.not_found_grace - waited)

    @property
    def not_found_for(self) -> float:
        """Seconds since the first 403/404, 0 when there was none."""
        if self._not_found_since is None:
            return 0.0
        return self._clock() - self._not_found_since
