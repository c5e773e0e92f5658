"""Saved webhooks to segment tasks: what ``archive --broker`` publishes.

The same reading and validation as ``archive`` (a bad record is named with its
file and line, the good ones beside it still flow). Each segment becomes one
task; each session's lifecycle stages and ``-failed`` webhooks become one
manifest message, merged by the workers like every other entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError

from ..archive import plan_segments
from ..errors import InputError
from ..events import TYPE_PREFIX, OtherEvent, TrackEvent, parse_event
from ..ingest import read_sources
from ..manifest import Failure, ManifestUpdate, utcnow
from .app import SEGMENT_QUEUE, SEGMENT_TASK
from .errors import BrokerUnavailable
from .merger import PUBLISH_RETRY, publish_update
from .messages import SegmentJob

log = logging.getLogger(__name__)

FAILED_WEBHOOK_REASON = "the recording service reported participant-track-recording-failed"


@dataclass
class Planned:
    """Everything a batch of saved webhooks asks for."""

    jobs: list[SegmentJob] = field(default_factory=list)
    updates: dict[str, ManifestUpdate] = field(default_factory=dict)
    input_errors: list[str] = field(default_factory=list)
    ignored_events: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def _note_event(planned: Planned, event: TrackEvent, at: datetime) -> None:
    data = event.data
    update = planned.updates.setdefault(data.sessionId, ManifestUpdate(session_id=data.sessionId))
    update.meeting_id = update.meeting_id or data.meetingId
    update.lifecycle.append((data.participantId, data.kind, event.stage.value, at))
    if event.stage.value == "failed":
        update.failures.append(
            Failure(
                participantId=data.participantId,
                kind=data.kind,
                reason=FAILED_WEBHOOK_REASON,
                at=at,
            )
        )


def plan_payload(
    planned: Planned, payload: Any, *, source: str, line: int | None = None, at: datetime
) -> None:
    """Add one decoded delivery's segments and lifecycle to ``planned`` (errors are noted)."""
    try:
        event = parse_event(payload, source=source, line=line)
        if isinstance(event, OtherEvent):
            planned.ignored_events.append(f"{source}:{line}: {event.webhookType}")
            log.warning(
                "%s:%s: webhook type %r is not a track recording; skipped",
                source,
                line,
                event.webhookType,
            )
            return
        segments = plan_segments(event, source=source, line=line) if event.data.fileDetails else []
    except InputError as exc:
        planned.input_errors.append(str(exc))
        log.error("%s", exc)
        return
    if event.webhookType.startswith(TYPE_PREFIX):
        _note_event(planned, event, at)
    for segment in segments:
        if segment.segment_id in planned.seen:
            continue
        planned.seen.add(segment.segment_id)
        # Arrival orders segments only when neither file names nor media say when they
        # started; microseconds keep several enqueuers' arrivals roughly in time order.
        arrival = time.time_ns() // 1000
        planned.jobs.append(SegmentJob.from_segment(segment, arrival=arrival))


def plan_sources(sources: Iterable[str]) -> Planned:
    """Read every source into jobs (one per distinct segment) and manifest updates."""
    planned = Planned()
    for item in read_sources(sources):
        if isinstance(item, InputError):
            planned.input_errors.append(str(item))
            log.error("%s", item)
            continue
        plan_payload(planned, item.payload, source=item.source, line=item.line, at=utcnow())
    return planned


def publish_job(
    app: Celery, job: SegmentJob, *, retry_policy: dict[str, Any] | None = None
) -> None:
    """Queue one segment task; returns once the broker has it (publisher confirms)."""
    try:
        app.send_task(
            SEGMENT_TASK,
            args=[job.to_message()],
            queue=SEGMENT_QUEUE,
            retry=True,
            retry_policy=retry_policy or PUBLISH_RETRY,
        )
    except (OSError, ConnectionError, KombuError) as exc:
        raise BrokerUnavailable(f"cannot queue {job.key}: {exc}") from exc


def publish_planned(
    app: Celery, planned: Planned, *, retry_policy: dict[str, Any] | None = None
) -> int:
    """Queue every job and manifest update; return how many segments were queued."""
    for update in planned.updates.values():
        publish_update(app, update, retry_policy=retry_policy)
    for job in planned.jobs:
        publish_job(app, job, retry_policy=retry_policy)
    return len(planned.jobs)
