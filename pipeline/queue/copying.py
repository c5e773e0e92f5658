"""``sync --broker``: each planned segment copy becomes one task on the workers.

The caller plans, sends one ``CopyJob`` per copy, waits for each result (the
Celery result backend on the same broker) and then writes the manifests
itself, exactly as a local sync does. A worker copies only between roots it
is configured with (``queue.sync_roots`` / ``--allow-root``): a message is
never trusted to name a bucket.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from celery import Celery, Task
from celery.result import AsyncResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storage_backends import Backend

from ..sync import Action, Digest, Outcome, Step, SyncItem, copy_one
from .app import COPY_TASK, SEGMENT_QUEUE
from .errors import MalformedMessage, QueueError

log = logging.getLogger(__name__)

#: How often the results of copies in flight are looked at (one read per copy in flight).
RESULT_POLL = 0.1


class RefusedRoot(QueueError):
    """A copy task names a storage root this worker is not configured to copy between."""


class CopyJob(BaseModel):
    """One object to copy from ``source`` to ``dest`` (root URLs) and re-prove."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    source: str = Field(min_length=1, max_length=4096)
    dest: str = Field(min_length=1, max_length=4096)
    key: str = Field(min_length=1, max_length=4096)
    size: int = Field(0, ge=0)
    crc32c: str | None = None
    sha256: str | None = None
    #: Whether the recorded content is known at all (``expected`` of the plan step).
    proven: bool = False
    replace: bool = False

    @classmethod
    def for_step(cls, source: str, dest: str, step: Step, *, replace: bool) -> CopyJob:
        """The job copying ``step``'s key between the two roots."""
        expected = step.expected
        return cls(
            source=source,
            dest=dest,
            key=step.key,
            size=step.size,
            crc32c=expected.crc32c if expected else None,
            sha256=expected.sha256 if expected else None,
            proven=expected is not None,
            replace=replace,
        )

    @classmethod
    def from_message(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CopyJob:
        """Validate a received message; ``MalformedMessage`` names what is wrong."""
        if kwargs or len(args) != 1 or not isinstance(args[0], dict):
            raise MalformedMessage("expected one JSON object as the copy job")
        try:
            return cls.model_validate(args[0])
        except ValidationError as exc:
            raise MalformedMessage(str(exc).replace("\n", " ")) from None

    @property
    def expected(self) -> Digest | None:
        """What the copy must be proved against."""
        if not self.proven:
            return None
        return Digest(self.size, self.crc32c, self.sha256)


def register_copy_task(
    app: Celery, roots: Mapping[str, Backend], *, temp_dir: Path | None = None
) -> None:
    """Register ``track_archive.copy_object``, copying only between ``roots`` (by URL)."""

    @app.task(
        name=COPY_TASK, bind=True, ignore_result=False, throws=(MalformedMessage, RefusedRoot)
    )
    def copy_object_task(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            job = CopyJob.from_message(args, kwargs)
            for role, url in (("source", job.source), ("destination", job.dest)):
                if url not in roots:
                    raise RefusedRoot(
                        f"{role} root {url!r} is not an allowed sync root "
                        "(queue.sync_roots / --allow-root)"
                    )
        except (MalformedMessage, RefusedRoot) as exc:
            log.error("copy task %s refused: failed once, not retried: %s", self.request.id, exc)
            raise
        source, dest = roots[job.source], roots[job.dest]
        item = copy_one(
            source,
            dest,
            job.key,
            expected=job.expected,
            replace=job.replace,
            size=job.size,
            source_stat=source.stat(job.key),
            temp_dir=temp_dir,
        )
        log.info("sync copy %s: %s %s", job.key, item.outcome.value, item.reason or "")
        return item.to_dict()


def _item_from(step: Step, value: Any) -> SyncItem:
    try:
        return SyncItem(
            key=step.key,
            outcome=Outcome(value["outcome"]),
            size=int(value["size"]),
            reason=value.get("reason"),
            server_side=value.get("server_side"),
        )
    except (TypeError, KeyError, ValueError):
        return SyncItem(step.key, Outcome.FAILED, step.size, f"unreadable task result {value!r}")


class BrokerCopier:
    """A ``sync`` copier sending each copy to the workers and waiting for its result.

    At most ``in_flight`` of its copies are on the broker (queued or running) at
    once; the next is sent when one is back. A large sync therefore never
    floods the queue: other work (segment tasks, other syncs) keeps its place
    in line and its share of the workers.
    """

    def __init__(
        self,
        app: Celery,
        source: Backend,
        dest: Backend,
        *,
        in_flight: int,
        idle_after: float | None = None,
        on_idle: Callable[[int], None] | None = None,
    ) -> None:
        """``on_idle(remaining)`` is called when no copy came back for ``idle_after`` seconds."""
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight!r}")
        self.app, self.source, self.dest, self.in_flight = app, source, dest, in_flight
        self.idle_after, self.on_idle = idle_after, on_idle

    def __call__(self, steps: list[Step]) -> Iterator[tuple[Step, SyncItem]]:
        waiting = deque(steps)
        sent: list[tuple[Step, AsyncResult]] = []
        quiet_since = time.monotonic()
        while waiting or sent:
            while waiting and len(sent) < self.in_flight:
                step = waiting.popleft()
                sent.append((step, self._send(step)))
            done = [pair for pair in sent if pair[1].ready()]
            if not done:
                if (
                    self.on_idle is not None
                    and self.idle_after is not None
                    and time.monotonic() - quiet_since >= self.idle_after
                ):
                    self.on_idle(len(waiting) + len(sent))
                    quiet_since = time.monotonic()  # once per quiet stretch
                time.sleep(RESULT_POLL)
                continue
            quiet_since = time.monotonic()
            for pair in done:
                sent.remove(pair)
                yield pair[0], self._outcome(*pair)

    def _send(self, step: Step) -> AsyncResult:
        job = CopyJob.for_step(
            self.source.url, self.dest.url, step, replace=step.action is Action.REPLACE
        )
        return self.app.send_task(
            COPY_TASK, args=[job.model_dump()], queue=SEGMENT_QUEUE, ignore_result=False
        )

    @staticmethod
    def _outcome(step: Step, result: AsyncResult) -> SyncItem:
        value = result.get(propagate=False)
        try:
            if result.failed():
                reason = f"{type(value).__name__}: {value}"
                return SyncItem(step.key, Outcome.FAILED, step.size, reason)
            return _item_from(step, value)
        finally:
            result.forget()
