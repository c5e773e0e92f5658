"""The storage contract, run unchanged against every backend kind."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.layout import manifest_key, segment_key
from storage_backends import (
    Backend,
    IntegrityError,
    InvalidKey,
    ObjectNotFound,
    PreconditionFailed,
    hash_bytes,
    hash_file,
)
from storage_backends._streams import TEMP_PREFIX
from storage_backends.keys import validate_key
from tests.fixtures.backends import StorageTarget

KEY = "sess-1/part-1/audio/track_1700000000000.webm"

UNSAFE_KEYS = [
    "",
    "/abs/key",
    "a/../b",
    "../escape",
    "a/./b",
    "a//b",
    "trailing/",
    "nul\x00byte",
    "tab\tkey",
    "back\\slash",
    "x" * 1025,
]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _no_temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_put_file_round_trip_keeps_bytes_checksums_and_metadata(
    backend: Backend, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    source = _write(tmp_path, "segment.webm", data)
    crc, sha, size = hash_file(source)

    stored = backend.put_file(
        KEY, source, crc32c=crc, sha256=sha, content_type="video/webm", metadata={"kind": "audio"}
    )
    assert (stored.key, stored.size, stored.crc32c, stored.sha256) == (KEY, size, crc, sha)
    assert stored.version

    stat = backend.stat(KEY)
    assert stat is not None
    assert (stat.size, stat.crc32c, stat.sha256, stat.version) == (size, crc, sha, stored.version)
    assert stat.metadata["kind"] == "audio"
    assert stat.updated is not None

    dest = tmp_path / "out" / "copy.webm"
    got = backend.get_file(KEY, dest)
    assert dest.read_bytes() == data
    assert got.size == size
    assert _no_temp_files(dest.parent) == []

    with backend.open_read(KEY) as stream:
        assert stream.read(10) == data[:10]
        assert stream.read() == data[10:]

    body, body_stat = backend.get_bytes(KEY)
    assert body == data and body_stat.version == stored.version


def test_empty_file_round_trips(backend: Backend, tmp_path: Path) -> None:
    source = _write(tmp_path, "empty", b"")
    crc, sha, _ = hash_file(source)
    backend.put_file("a/empty", source, crc32c=crc, sha256=sha)
    assert backend.get_bytes("a/empty")[0] == b""


def test_integrity_mismatch_raises_and_leaves_no_object(backend: Backend, tmp_path: Path) -> None:
    # The caller checksummed other bytes than the file now holds (a corruption
    # between download and upload): the store must refuse and keep nothing.
    source = _write(tmp_path, "segment", os.urandom(50_000))
    other_crc, other_sha = hash_bytes(b"the bytes the downloader actually saw")

    with pytest.raises(IntegrityError) as caught:
        backend.put_file(KEY, source, crc32c=other_crc, sha256=other_sha)

    assert backend.url in str(caught.value) and KEY in str(caught.value)
    assert backend.stat(KEY) is None
    assert list(backend.list()) == []


def test_integrity_mismatch_does_not_replace_an_existing_object(
    backend: Backend, tmp_path: Path
) -> None:
    good = _write(tmp_path, "good", b"good bytes")
    crc, sha, _ = hash_file(good)
    first = backend.put_file(KEY, good, crc32c=crc, sha256=sha)
    bad = _write(tmp_path, "bad", b"bad bytes!")

    with pytest.raises(IntegrityError):
        backend.put_file(KEY, bad, crc32c=crc, sha256=sha, if_absent=False)

    # Some services replace the object before the check can fail; the store then
    # removes what it wrote. Either way no corrupt object is left at the key.
    stat = backend.stat(KEY)
    assert stat is None or (
        stat.version == first.version and backend.get_bytes(KEY)[0] == b"good bytes"
    )


def test_create_only_put_file_refuses_a_second_create(backend: Backend, tmp_path: Path) -> None:
    first = _write(tmp_path, "first", b"first segment")
    second = _write(tmp_path, "second", b"second segment")
    crc1, sha1, _ = hash_file(first)
    crc2, sha2, _ = hash_file(second)
    backend.put_file(KEY, first, crc32c=crc1, sha256=sha1, if_absent=True)

    with pytest.raises(PreconditionFailed):
        backend.put_file(KEY, second, crc32c=crc2, sha256=sha2, if_absent=True)

    assert backend.get_bytes(KEY)[0] == b"first segment"


def test_create_only_put_bytes_refuses_a_second_create(backend: Backend) -> None:
    backend.put_bytes("sess/manifest.json", b'{"v": 1}', if_absent=True)
    with pytest.raises(PreconditionFailed):
        backend.put_bytes("sess/manifest.json", b'{"v": 2}', if_absent=True)
    assert backend.get_bytes("sess/manifest.json")[0] == b'{"v": 1}'


def test_compare_and_swap_detects_a_lost_race(backend: Backend) -> None:
    key = "sess/manifest.json"
    base = backend.put_bytes(key, b"v1", content_type="application/json")
    # Two writers read the same version; the first swap wins, the second must lose.
    winner = backend.put_bytes(key, b"v2 from A", if_version=base.version)
    assert winner.version != base.version

    with pytest.raises(PreconditionFailed):
        backend.put_bytes(key, b"v2 from B", if_version=base.version)

    data, stat = backend.get_bytes(key)
    assert data == b"v2 from A" and stat.version == winner.version
    # Re-read and retry is the remedy, and it works.
    backend.put_bytes(key, b"v3 from B", if_version=stat.version)
    assert backend.get_bytes(key)[0] == b"v3 from B"


def test_compare_and_swap_on_a_missing_object_fails(backend: Backend) -> None:
    with pytest.raises(PreconditionFailed):
        backend.put_bytes("sess/never.json", b"x", if_version="1234")
    assert backend.stat("sess/never.json") is None


def test_version_changes_on_every_write_even_with_same_bytes(backend: Backend) -> None:
    first = backend.put_bytes("doc", b"same").version
    second = backend.put_bytes("doc", b"same").version
    third = backend.put_bytes("doc", b"other").version
    assert len({first, second, third}) == 3 or backend.url.startswith("s3://")
    # S3 ETags are content hashes, so identical bytes give the same ETag there;
    # a swap against a stale ETag of different content must still fail.
    with pytest.raises(PreconditionFailed):
        backend.put_bytes("doc", b"late", if_version=first)


def test_absent_object_is_none_for_stat_and_not_found_otherwise(
    backend: Backend, tmp_path: Path
) -> None:
    assert backend.stat("no/such/key") is None
    with pytest.raises(ObjectNotFound):
        backend.get_bytes("no/such/key")
    with pytest.raises(ObjectNotFound):
        backend.get_file("no/such/key", tmp_path / "dest")
    with pytest.raises(ObjectNotFound):
        backend.open_read("no/such/key").__enter__()
    with pytest.raises(ObjectNotFound):
        backend.delete("no/such/key")
    assert not (tmp_path / "dest").exists()
    assert _no_temp_files(tmp_path) == []


def test_a_key_holding_an_encoded_id_reads_back_every_way(backend: Backend, tmp_path: Path) -> None:
    key = "sess/carol%2Fguest/audio/seg.webm"  # what the layout makes of "carol/guest"
    backend.put_bytes(key, b"recorded bytes")
    assert backend.get_bytes(key)[0] == b"recorded bytes"
    with backend.open_read(key) as stream:
        assert stream.read() == b"recorded bytes"
    backend.get_file(key, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"recorded bytes"


def test_delete_removes_the_object(backend: Backend) -> None:
    backend.put_bytes("a/b", b"x")
    backend.delete("a/b")
    assert backend.stat("a/b") is None
    assert list(backend.list()) == []


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused_everywhere(backend: Backend, key: str, tmp_path: Path) -> None:
    source = _write(tmp_path, "f", b"x")
    crc, sha, _ = hash_file(source)
    with pytest.raises(InvalidKey):
        backend.put_file(key, source, crc32c=crc, sha256=sha)
    with pytest.raises(InvalidKey):
        backend.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        backend.stat(key)
    with pytest.raises(InvalidKey):
        backend.get_bytes(key)
    with pytest.raises(InvalidKey):
        backend.delete(key)
    assert list(backend.list()) == []


def test_list_by_prefix_in_key_order(backend: Backend) -> None:
    keys = ["s1/p1/audio/a", "s1/p1/audio/b", "s1/p1/video/a", "s1/p2/audio/a", "s1-x/a", "s2/a"]
    for key in reversed(keys):
        backend.put_bytes(key, key.encode())

    assert [s.key for s in backend.list()] == sorted(keys)
    assert [s.key for s in backend.list("s1/")] == [
        "s1/p1/audio/a",
        "s1/p1/audio/b",
        "s1/p1/video/a",
        "s1/p2/audio/a",
    ]
    assert [s.key for s in backend.list("s1/p1/a")] == ["s1/p1/audio/a", "s1/p1/audio/b"]
    assert [s.key for s in backend.list("s1")] == [
        "s1-x/a",
        *[k for k in sorted(keys) if k.startswith("s1/")],
    ]
    assert list(backend.list("nothing/")) == []
    sizes = {s.key: s.size for s in backend.list()}
    assert sizes == {k: len(k) for k in keys}


def test_list_thousands_of_keys_through_pagination(
    storage_target: StorageTarget, backend_factory
) -> None:  # type: ignore[no-untyped-def]
    # A page size of 100 forces 25+ pages for 2,500 keys on S3 and GCS.
    backend = backend_factory(
        storage_target.with_options(s3={"list_page_size": 100}, gcs={"list_page_size": 100})
    )
    keys = [f"sess/p{i % 7}/audio/seg_{i:05d}.webm" for i in range(2500)]
    storage_target.seed(keys, b"0123456789")
    backend.put_bytes("other/outside-the-prefix", b"x")

    listed = backend.list("sess/")
    first = next(listed)  # lazily: the first page is enough for the first key
    assert (first.key, first.size) == (min(keys), 10)
    rest = [s.key for s in listed]
    assert [first.key, *rest] == sorted(keys)


def test_multipart_path_keeps_whole_file_checksums(
    storage_target: StorageTarget, backend_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    backend = backend_factory(
        storage_target.with_options(
            s3={
                "multipart_threshold": 1024 * 1024,
                "part_size": 5 * 1024 * 1024,
                "max_concurrency": 2,
            },
            gcs={"resumable_threshold": 256 * 1024, "chunk_size": 1024 * 1024},
        )
    )
    data = os.urandom(11 * 1024 * 1024 + 123)  # three S3 parts, twelve GCS chunks
    source = _write(tmp_path, "big.webm", data)
    crc, sha, size = hash_file(source)

    stored = backend.put_file(KEY, source, crc32c=crc, sha256=sha, if_absent=True)
    assert (stored.size, stored.crc32c, stored.sha256) == (size, crc, sha)
    dest = tmp_path / "back.webm"
    backend.get_file(KEY, dest)
    assert hash_file(dest) == (crc, sha, size)

    with pytest.raises(PreconditionFailed):
        backend.put_file(KEY, source, crc32c=crc, sha256=sha, if_absent=True)

    bad_crc, bad_sha = hash_bytes(b"not these bytes")
    with pytest.raises(IntegrityError):
        backend.put_file("other/key", source, crc32c=bad_crc, sha256=bad_sha)
    assert backend.stat("other/key") is None


def test_failed_download_leaves_destination_untouched(backend: Backend, tmp_path: Path) -> None:
    dest = tmp_path / "dest.webm"
    dest.write_bytes(b"previous content")
    with pytest.raises(ObjectNotFound):
        backend.get_file("missing", dest)
    assert dest.read_bytes() == b"previous content"
    assert _no_temp_files(tmp_path) == []


def test_get_bytes_refuses_objects_over_the_limit(backend: Backend) -> None:
    backend.put_bytes("big", b"x" * 1000)
    with pytest.raises(Exception, match="over the 999 limit"):
        backend.get_bytes("big", max_size=999)


def test_copy_within_same_service_keeps_metadata(
    storage_target: StorageTarget, backend_factory, make_storage_target
) -> None:  # type: ignore[no-untyped-def]
    source = backend_factory(storage_target)
    dest = backend_factory(make_storage_target(storage_target.kind))
    source.put_bytes("a/doc", b"payload", metadata={"kind": "audio"})

    copied = dest.copy_within(source, "a/doc", "b/doc", if_absent=True)
    if copied is None:  # this kind streams instead of copying server-side
        assert storage_target.kind == "local"
        return
    assert dest.get_bytes("b/doc")[0] == b"payload"
    stat = dest.stat("b/doc")
    assert stat is not None and stat.sha256 == hash_bytes(b"payload")[1]
    assert stat.metadata["kind"] == "audio"
    with pytest.raises(PreconditionFailed):
        dest.copy_within(source, "a/doc", "b/doc", if_absent=True)


#: Key pieces a hostile webhook or a careless caller could produce.
_pieces = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [".", "..", "", "manifest.json", ".track-archive-locks", ".track-archive-tmp-x", "@x"]
    ),
    st.text(alphabet="é", min_size=127, max_size=129),  # around 255 bytes
)
_any_key = st.one_of(st.text(max_size=40), st.lists(_pieces, min_size=1, max_size=4).map("/".join))
_ids = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=16),
    st.sampled_from([".", "..", "manifest.json", ".track-archive-locks", "@exports"]),
)
_fuzz = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_fuzz
@given(key=_any_key)
def test_every_backend_accepts_exactly_the_keys_of_the_one_rule(backend: Backend, key: str) -> None:
    # Each example under its own folder, so keys of earlier examples cannot interfere.
    full = f"{uuid.uuid4().hex[:8]}/{key}"
    try:
        validate_key(full, max_bytes=backend.max_key_bytes)
    except InvalidKey:
        with pytest.raises(InvalidKey):
            backend.put_bytes(full, b"x")
        with pytest.raises(InvalidKey):
            backend.stat(full)
        return
    stored = backend.put_bytes(full, b"x")
    assert stored.key == full
    assert [s.key for s in backend.list(full.split("/")[0] + "/")] == [full]
    assert backend.get_bytes(full)[0] == b"x"
    backend.delete(full)


@_fuzz
@given(session=_ids, participant=_ids, filename=_ids)
def test_layout_keys_are_stored_beside_the_manifest_on_every_backend(
    backend: Backend, session: str, participant: str, filename: str
) -> None:
    # Each example in its own folder (as under a bucket prefix), so examples cannot interfere.
    root = uuid.uuid4().hex[:8] + "/"
    segment = root + segment_key(session, participant, "audio", filename)
    manifest = root + manifest_key(session)
    backend.put_bytes(segment, b"segment")
    backend.put_bytes(manifest, b"{}", if_absent=True)
    assert sorted(s.key for s in backend.list(root)) == sorted([segment, manifest])
    assert backend.get_bytes(manifest)[0] == b"{}"
    assert backend.get_bytes(segment)[0] == b"segment"
