"""A worker's refused segment and its reason land in the quarantine, however long the file name."""

from __future__ import annotations

from pathlib import Path

from pipeline.layout import segment_key
from pipeline.queue.worker import quarantine_keys
from storage_backends import open_backend

STAMP = "20261130T110700123456"


def test_the_longest_file_name_s_bytes_and_reason_both_fit(tmp_path: Path) -> None:
    quarantine = open_backend(str(tmp_path / "quarantine"))
    short = segment_key("s", "p", "audio", "track.webm")
    # The longest name a key may end in: its reason's name once passed 255 bytes, and the
    # filesystem refused it (the refused bytes were kept without their reason).
    longest = segment_key("s", "p", "audio", "a" * 228 + ".webm")
    kept = {}
    for key in (short, longest):
        bytes_key, reason_key = quarantine_keys(key, STAMP)
        assert reason_key == bytes_key + ".reason.json"
        assert bytes_key.rpartition("/")[0] == key.rpartition("/")[0]
        quarantine.put_bytes(bytes_key, b"refused", content_type="video/webm")
        quarantine.put_bytes(reason_key, b"{}", content_type="application/json")
        kept[key] = (bytes_key, reason_key)
    assert kept[short] == (f"{short}.{STAMP}", f"{short}.{STAMP}.reason.json")
    assert sorted(s.key for s in quarantine.list()) == sorted(
        k for pair in kept.values() for k in pair
    )
    # Another refusal of the same key keeps its own pair.
    assert quarantine_keys(longest, STAMP.replace("1107", "1108")) != kept[longest]
