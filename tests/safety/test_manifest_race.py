"""A lost compare-and-swap race on a manifest, forced deterministically, loses no entry.

A wrapper backend lets a rival writer land its own manifest update between our
read of the manifest and our conditional write of the merged one. On local
disk and S3 (moto enforces ``IfMatch``/``IfNoneMatch``) the conditional write
itself is refused. The GCS emulator ignores ``ifGenerationMatch``, so there
what refuses the stale write is the backend's own generation check before it
uploads: the rival's write lands before that check, which is the window this
test can reach on GCS; a race inside the service cannot be shown on the emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.manifest import ManifestUpdate, Segment, read_manifest, update_manifest
from pipeline.sync import Outcome, sync
from storage_backends import Backend, ObjectStat
from tests.fixtures.backends import KINDS
from tests.sync.builders import ProxyBackend, build_session, put_segment


def _segment(participant: str) -> tuple[str, str, Segment]:
    return (
        participant,
        "audio",
        Segment(
            key=f"s-1/{participant}/audio/track_recording_{participant}_audio_1780000000000.webm",
            filename=f"track_recording_{participant}_audio_1780000000000.webm",
            sourceUrl=f"https://cdn.example/s-1/{participant}.webm",
            size=10,
            sha256="0" * 64,
            crc32c="AAAAAA==",
            startedAtMs=1_780_000_000_000,
            archivedAt=datetime.now(UTC),
        ),
    )


class _RivalWritesFirst(ProxyBackend):
    """Lands ``rival`` on the inner backend just before the first conditional manifest write."""

    def __init__(self, inner: Backend, rival: Callable[[Backend], object]) -> None:
        super().__init__(inner)
        self.rival = rival
        self.raced = 0

    def _race(self, key: str, kwargs: dict[str, Any]) -> None:
        conditional = kwargs.get("if_absent") or kwargs.get("if_version")
        if key.endswith("/manifest.json") and conditional and not self.raced:
            self.raced += 1
            self.rival(self.inner)

    def put_bytes(self, key: str, data: bytes, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
        self._race(key, kwargs)
        return super().put_bytes(key, data, **kwargs)

    def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
        self._race(key, kwargs)
        return super().put_file(key, path, **kwargs)


@pytest.mark.parametrize("existing", [False, True], ids=["create", "update"])
@pytest.mark.parametrize("kind", KINDS)
def test_update_manifest_keeps_both_writers_entries(
    kind: str, existing: bool, backend_factory: Callable[..., Backend]
) -> None:
    backend = backend_factory(kind)
    if existing:
        update_manifest(backend, ManifestUpdate(session_id="s-1", segments=[_segment("first")]))
    rival = ManifestUpdate(session_id="s-1", segments=[_segment("rival")])
    racing = _RivalWritesFirst(backend, lambda inner: update_manifest(inner, rival))

    update_manifest(racing, ManifestUpdate(session_id="s-1", segments=[_segment("mine")]))
    assert racing.raced == 1
    assert racing.calls["put_bytes"] >= 2  # the lost write, then the re-merged one
    manifest, _ = read_manifest(backend, "s-1")
    assert manifest is not None
    expected = {"mine", "rival"} | ({"first"} if existing else set())
    assert set(manifest.participants) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_sync_losing_the_manifest_race_never_overwrites_the_rival(
    kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory(kind)
    build_session(source, tmp_path, "s-1", {("alice", "audio"): 1})
    assert sync(source, dest).ok
    late = put_segment(
        source, tmp_path, "s-1", "bob", "audio", 5, b"late" * 50, started_ms=1_780_000_500_000
    )
    update_manifest(source, ManifestUpdate(session_id="s-1", segments=[late]))
    rival = ManifestUpdate(session_id="s-1", segments=[_segment("rival")])
    racing = _RivalWritesFirst(dest, lambda inner: update_manifest(inner, rival))

    report = sync(source, racing)
    assert racing.raced == 1
    outcome = {i.key: i for i in report.items}["s-1/manifest.json"]
    assert outcome.outcome is Outcome.CONFLICT and "changed meanwhile" in (outcome.reason or "")
    assert not report.ok
    manifest, _ = read_manifest(dest, "s-1")
    assert manifest is not None and "rival" in manifest.participants  # not overwritten
    assert dest.stat(late[2].key) is not None  # the segment itself was copied
