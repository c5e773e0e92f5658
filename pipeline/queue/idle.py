"""Saying why a wait on the workers makes no progress.

``archive --broker`` and ``sync --broker`` wait for workers without a time
limit (a big batch may take hours). When nothing has finished for
``queue.idle_warning`` seconds they say so once per quiet stretch, and whether
any worker answers on the broker at all: none is the usual reason, and worth
naming with the command that fixes it.
"""

from __future__ import annotations

import logging

from celery import Celery

log = logging.getLogger(__name__)


def report_idle(app: Celery, idle: float, remaining: int, *, what: str, start: str) -> None:
    """Log why none of ``remaining`` ``what``\\ s finished for ``idle`` seconds.

    ``start`` is the worker command line to suggest when no worker answers.
    """
    try:
        workers = len(app.control.ping(timeout=1.0) or [])
    except Exception as exc:  # a failed probe (broker gone, timeout) must not end the wait
        log.warning("no %s finished for %g s; asking the workers failed: %s", what, idle, exc)
        return
    where = app.connection_for_write().as_uri()
    if workers == 0:
        log.warning(
            "no %s finished for %g s and no worker answers on %s: %d %s(s) wait in "
            "the queue; start `%s` (interrupting leaves them queued)",
            what,
            idle,
            where,
            remaining,
            what,
            start,
        )
    else:
        log.warning(
            "no %s finished for %g s; %d worker(s) answer on %s, %d %s(s) remaining",
            what,
            idle,
            workers,
            where,
            remaining,
            what,
        )
