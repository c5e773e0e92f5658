"""The tasks a worker runs, registered under stable names (see ``app``).

A task message that is not a valid job is failed once with a clear log line:
it is acknowledged (never redelivered) and counted. A storage service or
broker that is briefly away is retried with Celery's retry, backing off as the
download policy says, at most ``download.max_attempts`` times; the last
attempt records the failure in the manifest instead.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task

from storage_backends import BackendUnavailable

from ..download import DownloadPolicy
from ..download.retry import backoff_delay
from .app import SEGMENT_TASK
from .errors import BrokerUnavailable, MalformedMessage
from .messages import SegmentJob
from .worker import SegmentWorker

log = logging.getLogger(__name__)


def _job_from(args: tuple[Any, ...], kwargs: dict[str, Any]) -> SegmentJob:
    if kwargs or len(args) != 1:
        raise MalformedMessage(
            f"expected one job argument, got {len(args)} positional and {len(kwargs)} keyword"
        )
    return SegmentJob.from_message(args[0])


def register_tasks(app: Celery, worker: SegmentWorker, policy: DownloadPolicy) -> None:
    """Register ``track_archive.archive_segment`` on ``app``, run by ``worker``."""

    # ``throws``: a malformed message is an expected failure, logged in one line, no traceback.
    @app.task(name=SEGMENT_TASK, bind=True, throws=(MalformedMessage,))
    def archive_segment(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            job = _job_from(args, kwargs)
        except MalformedMessage as exc:
            worker.metrics.malformed.inc()
            log.error(
                "malformed task message %s dropped: failed once, not retried: %s",
                self.request.id,
                exc,
            )
            raise
        retries = int(self.request.retries or 0)
        try:
            outcome = worker.archive(job, final_attempt=retries + 1 >= policy.max_attempts)
        except (BackendUnavailable, BrokerUnavailable) as exc:
            delay = backoff_delay(retries, base=policy.backoff_base, cap=policy.backoff_cap)
            log.warning("%s: %s; retrying in %.1f s", job.key, exc, delay)
            worker.metrics.segments.labels(outcome="retried").inc()
            raise self.retry(exc=exc, countdown=delay, max_retries=policy.max_attempts) from exc
        return {"state": outcome.state, "size": outcome.size, "reason": outcome.reason}
