"""When a sync writes each session's manifest, and how its work is spread over one pool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.manifest import ManifestUpdate, update_manifest
from pipeline.sync import Outcome, SyncItem, SyncOptions, SyncProgress, sync
from pipeline.sync.plan import Action, Step
from pipeline.sync.schedule import BATCH_BYTES, BATCH_STEPS, batches
from storage_backends import Backend, ObjectStat

from .builders import ProxyBackend, build_session, put_segment

#: Generous: only reached when the behaviour under test is broken.
WAIT = 20.0


class _Landing(ProxyBackend):
    """A destination that records the order of writes and signals chosen keys landing."""

    def __init__(self, inner: Backend, signals: dict[str, threading.Event]) -> None:
        super().__init__(inner)
        self.signals = signals
        self.order: list[str] = []

    def put_file(self, key: str, path: Path, **kwargs: Any) -> ObjectStat:  # type: ignore[override]
        stat = super().put_file(key, path, **kwargs)
        self.order.append(key)
        if key in self.signals:
            self.signals[key].set()
        return stat


class _Held(ProxyBackend):
    """A source whose chosen objects cannot be read until an event is set (or ``WAIT`` passes)."""

    def __init__(self, inner: Backend, hold: dict[str, threading.Event]) -> None:
        super().__init__(inner)
        self.hold = hold
        self.released_in_time: dict[str, bool] = {}

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        if key in self.hold:
            self.released_in_time[key] = self.hold[key].wait(WAIT)
        return super().open_read(key)


def test_a_sessions_manifest_lands_while_a_later_session_is_still_copying(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("local")
    build_session(source, tmp_path, "s-1", {("alice", "audio"): 3})
    (late,) = build_session(
        source, tmp_path, "s-2", {("bob", "audio"): 1}, start_ms=1_790_000_000_000
    )
    landed = threading.Event()
    # s-2's one segment cannot be read until s-1's manifest is at the destination.
    held = _Held(source, {late: landed})
    target = _Landing(dest, {"s-1/manifest.json": landed})

    report = sync(held, target, SyncOptions(concurrency=2))

    assert held.released_in_time == {late: True}, "s-1's manifest waited for s-2's segment"
    assert report.ok and report.copied == 6
    assert target.order.index("s-1/manifest.json") < target.order.index(late)
    assert target.order.index(late) < target.order.index("s-2/manifest.json")


def test_a_manifest_naming_another_sessions_object_waits_for_it(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("local")
    first, second = build_session(source, tmp_path, "s-1", {("alice", "audio"): 2})
    # s-2's manifest also names an object of s-1 (a document written by hand, say).
    _, _, borrowed = put_segment(
        source, tmp_path, "s-1", "alice", "video", 9, b"shared" * 99, started_ms=1_790_000_000_000
    )
    own = put_segment(
        source, tmp_path, "s-2", "bob", "audio", 0, b"own" * 99, started_ms=1_790_000_060_000
    )
    update_manifest(
        source,
        ManifestUpdate(
            session_id="s-2", meeting_id="room-1", segments=[own, ("alice", "video", borrowed)]
        ),
    )
    own_landed = threading.Event()
    # The borrowed object is still copying when s-2's own segment is done.
    held = _Held(source, {borrowed.key: own_landed})
    target = _Landing(dest, {own[2].key: own_landed})

    report = sync(held, target, SyncOptions(concurrency=2))

    outcomes = {item.key: item for item in report.items}
    assert outcomes["s-2/manifest.json"].outcome is Outcome.COPIED, outcomes["s-2/manifest.json"]
    assert target.order.index(borrowed.key) < target.order.index("s-2/manifest.json")
    assert {first, second} <= set(target.order)


def _step(key: str, size: int) -> Step:
    return Step(key, Action.COPY, key.split("/")[0], False, size)


def test_small_objects_go_in_batches_and_large_ones_alone() -> None:
    small = [_step(f"s/{i:04d}", 1024) for i in range(1000)]
    cut = batches(small, 2)
    assert [s.key for batch in cut for s in batch] == [s.key for s in small]  # order kept
    assert all(len(batch) <= BATCH_STEPS for batch in cut) and len(cut) < len(small) // 10

    large = [_step(f"s/{i}", BATCH_BYTES) for i in range(5)]
    assert [len(batch) for batch in batches(large, 2)] == [1] * 5
    # Few objects: one each, so every worker has one.
    assert [len(batch) for batch in batches(small[:4], 2)] == [1] * 4
    assert batches([], 2) == []


def test_every_outcome_is_reported_once_across_batches(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("local")
    keys = []
    for n in range(6):
        keys += build_session(
            source, tmp_path, f"s-{n}", {("alice", "audio"): 5}, start_ms=1_780_000_000_000 + n
        )
    seen: list[str] = []

    class Progress(SyncProgress):
        def advance(self, item: SyncItem) -> None:
            seen.append(item.key)

    report = sync(source, ProxyBackend(dest), SyncOptions(concurrency=3), Progress())
    assert report.ok and report.copied == len(keys) + 6
    assert sorted(seen) == sorted(item.key for item in report.items)
    assert len(seen) == len(set(seen)) == len(keys) + 6
