"""The exception tree of ``pipeline.queue``.

::

    TrackArchiveError
     └── QueueError                         base of everything raised here
          ├── BrokerUnavailable (also ConnectionError)  the broker cannot be reached
          └── MalformedMessage  (also ValueError)       a task message that cannot be a job

kombu and redis/amqp errors are translated to ``BrokerUnavailable`` where the
package talks to the broker, so callers never catch a transport's exceptions.
"""

from __future__ import annotations

from ..errors import TrackArchiveError


class QueueError(TrackArchiveError):
    """Base of every error of the queue package."""


class BrokerUnavailable(QueueError, ConnectionError):
    """The broker refused or dropped the connection (after kombu's own retries)."""


class MalformedMessage(QueueError, ValueError):
    """A message on the queue is not a valid job; it is failed once and never retried."""
