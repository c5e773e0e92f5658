from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from pipeline.download import DownloadPolicy
from pipeline.download.retry import RetryBudget, backoff_delay, parse_retry_after


def test_full_jitter_stays_within_the_exponential_ceiling_and_the_cap() -> None:
    assert backoff_delay(0, base=0.5, cap=30, rng=lambda: 0.999) < 0.5
    assert backoff_delay(3, base=0.5, cap=30, rng=lambda: 0.999) < 4.0
    assert backoff_delay(3, base=0.5, cap=30, rng=lambda: 0.999) > 3.9
    assert backoff_delay(50, base=0.5, cap=30, rng=lambda: 0.999) <= 30
    assert backoff_delay(5, base=0.5, cap=30, rng=lambda: 0.0) == 0.0


def test_retry_after_seconds_and_http_dates_are_capped() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7", cap=120) == 7.0
    assert parse_retry_after("3600", cap=120) == 120.0
    in_ten = format_datetime(now + timedelta(seconds=10), usegmt=True)
    assert parse_retry_after(in_ten, cap=120, now=now) == 10.0
    past = format_datetime(now - timedelta(seconds=10), usegmt=True)
    assert parse_retry_after(past, cap=120, now=now) == 0.0
    assert parse_retry_after("soon", cap=120) is None
    assert parse_retry_after(None, cap=120) is None


def test_the_budget_stops_after_max_attempts_without_progress() -> None:
    clock = [0.0]
    budget = RetryBudget(DownloadPolicy(max_attempts=3, backoff_base=0.01), clock=lambda: clock[0])
    assert budget.next_delay() is not None
    assert budget.next_delay() is not None
    assert budget.next_delay() is None


def test_progress_resets_the_budget_so_long_files_survive_many_drops() -> None:
    budget = RetryBudget(DownloadPolicy(max_attempts=2, backoff_base=0.01))
    for offset in range(1, 10):
        budget.progressed(offset * 1000)
        assert budget.next_delay() is not None
    budget.progressed(5000)  # a restart that did not get further is not progress
    assert budget.next_delay() is None


def test_the_budget_stops_when_retrying_would_exceed_max_retry_time() -> None:
    clock = [0.0]
    policy = DownloadPolicy(max_attempts=100, max_retry_time=5.0, backoff_base=0.01)
    budget = RetryBudget(policy, clock=lambda: clock[0])
    assert budget.next_delay(retry_after=2.0) == 2.0
    clock[0] = 4.0
    assert budget.next_delay(retry_after=2.0) is None


def test_not_found_is_retried_for_the_grace_period_only() -> None:
    clock = [0.0]
    policy = DownloadPolicy(not_found_grace=3.0, backoff_base=0.5, backoff_cap=1.0)
    budget = RetryBudget(policy, clock=lambda: clock[0])
    delays = []
    while (delay := budget.not_found_delay()) is not None:
        delays.append(delay)
        clock[0] += delay
    assert clock[0] == 3.0  # asked once more exactly at the end of the grace period
    assert all(0 < d <= 1.0 for d in delays)
    assert budget.not_found_for == 3.0
