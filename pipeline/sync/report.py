"""What a sync did (or, in a dry run, would do), item by item and in total."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Outcome(Enum):
    """The result for one key."""

    COPIED = "copied"
    SKIPPED = "skipped"
    CONFLICT = "conflict"
    DELETED = "deleted"
    FAILED = "failed"
    #: Only at the destination and left there (no ``--delete``, or unsafe to delete).
    KEPT = "kept"


@dataclass(frozen=True, slots=True)
class SyncItem:
    """One key's outcome; in a dry run, the outcome planned."""

    key: str
    outcome: Outcome
    size: int = 0
    reason: str | None = None
    #: ``True`` when copied server-side, ``False`` when streamed, ``None`` otherwise.
    server_side: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        # Spelled out: ``dataclasses.asdict`` deep-copies every field and cost
        # about 25 us per item, the whole end of a sync of thousands of objects.
        return {
            "key": self.key,
            "outcome": self.outcome.value,
            "size": self.size,
            "reason": self.reason,
            "server_side": self.server_side,
        }


@dataclass
class SyncReport:
    """Every item's outcome, and the totals the CLI prints."""

    dry_run: bool = False
    items: list[SyncItem] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        """How many items had ``outcome``."""
        return sum(1 for item in self.items if item.outcome is outcome)

    @property
    def copied(self) -> int:
        """Objects copied (manifests included)."""
        return self.count(Outcome.COPIED)

    @property
    def skipped(self) -> int:
        """Objects already at the destination with the same content."""
        return self.count(Outcome.SKIPPED)

    @property
    def conflicts(self) -> int:
        """Destination objects with different content, left alone."""
        return self.count(Outcome.CONFLICT)

    @property
    def deleted(self) -> int:
        """Destination-only objects removed (``delete=True``)."""
        return self.count(Outcome.DELETED)

    @property
    def failed(self) -> int:
        """Objects that could not be copied or deleted, or manifests held back."""
        return self.count(Outcome.FAILED)

    @property
    def bytes(self) -> int:
        """Bytes copied (planned to be copied, in a dry run)."""
        return sum(item.size for item in self.items if item.outcome is Outcome.COPIED)

    @property
    def ok(self) -> bool:
        """No failure and no conflict: the destination holds the source's content."""
        return self.failed == 0 and self.conflicts == 0

    def summary(self) -> dict[str, int]:
        """The totals, as ``--json`` prints them."""
        return {
            "copied": self.copied,
            "skipped": self.skipped,
            "conflicts": self.conflicts,
            "deleted": self.deleted,
            "failed": self.failed,
            "bytes": self.bytes,
        }

    def problems(self) -> list[SyncItem]:
        """The items that make the sync unsuccessful."""
        return [i for i in self.items if i.outcome in (Outcome.FAILED, Outcome.CONFLICT)]


class SyncProgress:
    """Hooks a caller overrides to follow a sync (the CLI draws a progress bar)."""

    def planned(self, items: int, total_bytes: int) -> None:
        """Called once the plan is known: items to process and bytes to copy."""

    def advance(self, item: SyncItem) -> None:
        """Called as each item finishes (from the calling thread)."""
