from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.manifest import Failure, ManifestUpdate, Segment, merge

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def _segment(name: str, ms: int | None, arrival: int, size: int = 100) -> Segment:
    return Segment(
        key=f"s/p/audio/{name}",
        filename=name,
        sourceUrl=f"https://cdn/{name}",
        size=size,
        sha256="0" * 64,
        crc32c="AAAAAA==",
        durationSeconds=1.5,
        startedAtMs=ms,
        archivedAt=T0,
        arrival=arrival,
    )


def test_segments_are_ordered_by_the_epoch_in_their_names_not_by_arrival():
    update = ManifestUpdate(
        session_id="s",
        segments=[
            ("p", "audio", _segment("c", 3000, 1)),
            ("p", "audio", _segment("a", 1000, 2)),
            ("p", "audio", _segment("b", 2000, 3)),
        ],
    )
    manifest = merge(None, update)
    assert [s.filename for s in manifest.participants["p"]["audio"]] == ["a", "b", "c"]
    assert manifest.summary["p"]["audio"].segmentCount == 3
    assert manifest.summary["p"]["audio"].totalBytes == 300
    assert manifest.summary["p"]["audio"].totalDurationSeconds == 4.5


def test_a_failure_is_cleared_once_the_same_file_is_archived():
    failed = ManifestUpdate(
        session_id="s",
        failures=[
            Failure(participantId="p", kind="audio", sourceUrl="https://cdn/a", reason="404", at=T0)
        ],
    )
    done = ManifestUpdate(session_id="s", segments=[("p", "audio", _segment("a", 1000, 1))])
    manifest = merge(merge(None, failed), done)
    assert manifest.failures == []


def test_lifecycle_out_of_order_ends_in_the_latest_stage():
    update = ManifestUpdate(
        session_id="s",
        lifecycle=[
            ("p", "audio", "stopped", T0),
            ("p", "audio", "starting", T0),
            ("p", "audio", "started", T0),
        ],
    )
    entry = merge(None, update).lifecycle["p"]["audio"]
    assert entry.state == "stopped"
    assert entry.seen == ["starting", "started", "stopped"]


updates = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.integers(0, 5000), st.sampled_from(["audio", "video"])),
    min_size=1,
    max_size=8,
).map(
    lambda items: ManifestUpdate(
        session_id="s",
        segments=[("p", kind, _segment(name, ms, i)) for i, (name, ms, kind) in enumerate(items)],
    )
)


def _content(manifest):
    data = manifest.model_dump(exclude={"updatedAt"})
    return data


@settings(max_examples=50)
@given(updates, updates)
def test_merge_is_idempotent_and_keeps_everything_from_both_writers(a, b):
    once = merge(merge(None, a), b)
    twice = merge(once, b)
    assert _content(once) == _content(twice)
    keys = {seg.key for _, _, seg in once.segments()}
    assert keys == {seg.key for _, _, seg in a.segments} | {seg.key for _, _, seg in b.segments}


def test_a_track_reported_failed_and_stopped_ends_stopped_in_the_manifest_as_in_the_receiver():
    from pipeline.events import Lifecycle

    update = ManifestUpdate(
        session_id="s",
        lifecycle=[("p", "audio", "stopped", T0), ("p", "audio", "failed", T0)],
    )
    entry = merge(None, update).lifecycle["p"]["audio"]
    receiver = max((Lifecycle.STOPPED, Lifecycle.FAILED), key=lambda stage: stage.rank)
    assert entry.state == receiver.value == "stopped"
    assert entry.seen == ["failed", "stopped"]


def test_one_object_from_two_sources_keeps_both_urls():
    first = _segment("a", 1000, 1)
    mirror = first.model_copy(update={"sourceUrl": "https://cdn/a?v=2", "arrival": 2})
    for order in ((first, mirror), (mirror, first)):
        both = ManifestUpdate(session_id="s", segments=[("p", "audio", seg) for seg in order])
        (entry,) = merge(None, both).participants["p"]["audio"]
        assert sorted(entry.source_urls()) == ["https://cdn/a", "https://cdn/a?v=2"]
    # An entry from one source is stored as it always was.
    single = merge(None, ManifestUpdate(session_id="s", segments=[("p", "audio", first)]))
    assert b"otherSourceUrls" not in single.to_json()
