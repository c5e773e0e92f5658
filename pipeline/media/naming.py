"""What a recording's file name says about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Epoch milliseconds accepted as a recording start: 2015-01-01 to 2100-01-01 UTC.
# Outside this range the digits are some other number (a participant id, a counter).
_EARLIEST_MS = 1_420_070_400_000
_LATEST_MS = 4_102_444_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def started_at_from_filename(name: str) -> datetime | None:
    """The start time in a name like ``track_recording_{participant}_{kind}_{epochMs}.webm``.

    Takes the last ``_``-separated field before the extension, so participant ids that
    contain underscores do no harm; returns None unless it is a plausible epoch in ms.
    """
    base = name.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    field = stem.rsplit("_", 1)[-1]
    if not field.isascii() or not field.isdigit() or len(field) > 13:
        return None
    millis = int(field)
    if not _EARLIEST_MS <= millis < _LATEST_MS:
        return None
    return _EPOCH + timedelta(milliseconds=millis)
