"""The stages of a track recording, named after its webhooks, and their order.

Kept apart from the webhook models (``pipeline.events``): the manifest's merge
rules order stages too, and every command that reads manifests imports them
without loading the webhook validators.
"""

from __future__ import annotations

from enum import StrEnum

TYPE_PREFIX = "participant-track-recording-"


class Lifecycle(StrEnum):
    """The stage a track recording reached, named after its webhook."""

    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """How far a recording has got: a later stage wins over an earlier one, whatever the order.

        ``stopped`` outranks ``failed`` because it names files that exist.
        """
        return _STAGE_RANK[self]


_STAGE_RANK = {
    Lifecycle.STARTING: 0,
    Lifecycle.STARTED: 1,
    Lifecycle.STOPPING: 2,
    Lifecycle.FAILED: 3,
    Lifecycle.STOPPED: 4,
}


def stage_rank(stage: str) -> int:
    """:attr:`Lifecycle.rank` of a stage's name; -1 for a name that is no stage."""
    try:
        return Lifecycle(stage).rank
    except ValueError:
        return -1
