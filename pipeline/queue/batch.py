"""``archive --broker``: queue saved webhooks' segments and wait for the workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery

from storage_backends import Backend

from ..archive import RunSummary
from ..config import Config
from .app import BrokerSettings, make_app
from .enqueue import plan_sources, publish_planned
from .waiting import BatchWaiter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Callbacks for a progress display: the total once known, then each finished segment."""

    begin: Callable[[int], None]
    step: Callable[[int], None]


def archive_via_broker(
    config: Config,
    backend: Backend,
    sources: list[str],
    *,
    wait: bool,
    progress: BatchProgress | None = None,
) -> tuple[RunSummary, int]:
    """Queue every segment the sources name; with ``wait``, until each is archived or failed.

    Returns the summary (complete only with ``wait``) and how many segments were queued.
    """
    app = make_app(BrokerSettings.from_config(config))
    planned = plan_sources(sources)
    waiter = BatchWaiter(backend, planned.jobs)
    if wait:
        already = waiter.snapshot()
        if progress is not None:
            progress.begin(len(planned.jobs))
            for _ in range(already):
                progress.step(0)
    try:
        queued = publish_planned(app, planned)
        log.info("queued %d segments on %s", queued, app.connection_for_write().as_uri())
        if wait:
            idle = config.queue.idle_warning
            summary = waiter.wait(
                progress.step if progress else None,
                idle_after=idle,
                on_idle=lambda remaining: _report_idle(app, idle, remaining),
            )
        else:
            summary = RunSummary()
    finally:
        app.close()
    summary.input_errors = planned.input_errors
    summary.ignored_events = planned.ignored_events
    return summary, queued


def _report_idle(app: Celery, idle: float, remaining: int) -> None:
    """Say why nothing finishes: no worker at all is the usual reason, and worth naming."""
    try:
        workers = len(app.control.ping(timeout=1.0) or [])
    except Exception as exc:  # a failed probe (broker gone, timeout) must not end the wait
        log.warning("no segment finished for %g s; asking the workers failed: %s", idle, exc)
        return
    where = app.connection_for_write().as_uri()
    if workers == 0:
        log.warning(
            "no segment finished for %g s and no worker answers on %s: %d segment(s) wait in "
            "the queue; start `track-archive worker --broker URL` (interrupting leaves them queued)",
            idle,
            where,
            remaining,
        )
    else:
        log.warning(
            "no segment finished for %g s; %d worker(s) answer on %s, %d segment(s) remaining",
            idle,
            workers,
            where,
            remaining,
        )
