"""The Celery app: one broker URL in, an app whose settings make delivery durable.

What each setting buys (at least once delivery, archived exactly once by the
create-only write downstream):

* ``task_acks_late``: a task is acknowledged after it finished, so a worker that
  dies mid-download leaves it on the queue for another worker;
* ``task_reject_on_worker_lost``: a pool process that died hands its task back;
* ``worker_prefetch_multiplier = 1``: a busy worker does not hoard tasks that
  idle workers could start;
* durable queues and persistent messages survive a broker restart; publisher
  confirms (RabbitMQ ``confirm_publish``) make a publish return only once the
  broker has the message;
* Redis ``visibility_timeout``: an unacknowledged task is redelivered after it,
  so it must outlast the longest download (``download.deadline``); workers
  look for such tasks every quarter of it (at most every 10 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from ..config import Config
from ..errors import ConfigError

#: Stable task and queue names: messages outlive releases, so these never change.
SEGMENT_TASK = "track_archive.archive_segment"
COPY_TASK = "track_archive.copy_object"
SEGMENT_QUEUE = "track-archive.segments"
MANIFEST_QUEUE = "track-archive.manifests"

#: Redis redelivers after the download deadline plus this margin unless configured.
VISIBILITY_MARGIN = 600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerSettings:
    """The broker URL and the one timing that depends on the download policy."""

    url: str
    visibility_timeout: float

    @classmethod
    def from_config(cls, config: Config) -> BrokerSettings:
        """From ``queue.broker`` and ``queue.visibility_timeout`` (validated against the deadline)."""
        if not config.queue.broker:
            raise ConfigError(
                "no broker: give --broker URL, set TRACK_ARCHIVE_BROKER or queue.broker "
                "(redis://host:6379/0 or amqp://user:pass@host:5672//)"
            )
        deadline = config.download.deadline
        timeout = config.queue.visibility_timeout or deadline + VISIBILITY_MARGIN
        if timeout <= deadline:
            raise ConfigError(
                f"queue.visibility_timeout ({timeout:g} s) must exceed download.deadline "
                f"({deadline:g} s): Redis would hand a running download to a second worker"
            )
        return cls(url=config.queue.broker, visibility_timeout=timeout)

    @property
    def is_redis(self) -> bool:
        """True for ``redis://`` and ``rediss://`` brokers."""
        return self.url.startswith(("redis://", "rediss://"))


def segment_queue() -> Queue:
    """The durable queue segment tasks travel on."""
    return Queue(SEGMENT_QUEUE, Exchange(SEGMENT_QUEUE, type="direct", durable=True), SEGMENT_QUEUE)


def manifest_queue() -> Queue:
    """The durable queue finished manifest entries travel on (see ``merger``)."""
    return Queue(
        MANIFEST_QUEUE, Exchange(MANIFEST_QUEUE, type="direct", durable=True), MANIFEST_QUEUE
    )


def _transport_options(settings: BrokerSettings) -> dict[str, Any]:
    if settings.is_redis:
        # By default kombu looks for tasks past their timeout on every tenth sweep (one
        # sweep per 10 s), under a lock that lasts 300 s when its holder is killed: a dead
        # worker's task came back minutes late. Look on every sweep, sweep more often for
        # short timeouts, and let a dead holder's lock lapse within a few sweeps (two
        # sweeps at once are harmless: each task is put back in one transaction).
        sweep = max(1, min(10, int(settings.visibility_timeout // 4)))
        return {
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": sweep,
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": max(5, 3 * sweep),
        }
    return {"confirm_publish": True}


def make_app(settings: BrokerSettings) -> Celery:
    """A Celery app on ``settings.url`` with the durable settings described above."""
    # Results (only ``sync --broker`` copies keep one) travel over the broker itself.
    results = settings.url if settings.is_redis else "rpc://"
    app = Celery("track_archive", broker=settings.url, backend=results, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_queues=[segment_queue()],
        task_default_queue=SEGMENT_QUEUE,
        task_default_exchange=SEGMENT_QUEUE,
        task_default_routing_key=SEGMENT_QUEUE,
        task_default_delivery_mode="persistent",
        task_create_missing_queues=False,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_transport_options=_transport_options(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_publish_retry=True,
        # Flower and `celery events` see tasks only when workers send events.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_heartbeat=10,
    )
    return app
