"""``archive --broker``: queue saved webhooks' segments and wait for the workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from storage_backends import Backend

from ..archive import RunSummary
from ..config import Config
from .app import BrokerSettings, make_app
from .enqueue import plan_sources, publish_planned
from .idle import report_idle
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
                on_idle=lambda remaining: report_idle(
                    app, idle, remaining, what="segment", start="track-archive worker --broker URL"
                ),
            )
        else:
            summary = RunSummary()
    finally:
        app.close()
    summary.input_errors = planned.input_errors
    summary.ignored_events = planned.ignored_events
    return summary, queued
