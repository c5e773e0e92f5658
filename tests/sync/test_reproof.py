"""Every byte a sync moves is proved against the size and checksums recorded for it."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest
from click.testing import CliRunner

from pipeline.cli.sync_cmds import sync as sync_command
from pipeline.layout import segment_key
from pipeline.manifest import Manifest
from pipeline.sync import Outcome, SyncReport, sync
from storage_backends import Backend, ObjectStat, hash_bytes
from storage_backends.local import LocalBackend
from tests.fixtures.backends import KINDS, StorageTarget
from tests.safety.forge import same_crc32c

from .builders import ProxyBackend, build_session, contents

LAYOUT = {("alice", "audio"): 2, ("bob", "audio"): 2}
MANIFEST = "s-1/manifest.json"
VICTIM = segment_key("s-1", "bob", "audio", "track_recording_bob_audio_1780000120000.webm")


def _archive(backend: Backend, tmp: Path, size: int = 1000) -> list[str]:
    def payload(name: str, i: int) -> bytes:
        return (f"{name}#{i}|".encode() * size)[:size]

    return build_session(backend, tmp, "s-1", LAYOUT, payload=payload)


def _failed(report: SyncReport) -> dict[str, str]:
    return {i.key: i.reason or "" for i in report.items if i.outcome is Outcome.FAILED}


def _assert_only_victim_refused(report: SyncReport, dest: Backend, keys: list[str]) -> str:
    """The victim fails by its key, nothing lands for it, its manifest is held back."""
    failed = _failed(report)
    assert set(failed) == {VICTIM, MANIFEST}, failed
    assert "held back" in failed[MANIFEST]
    assert dest.stat(VICTIM) is None
    assert dest.stat(MANIFEST) is None
    assert {k for k in contents(dest)} == set(keys) - {VICTIM}
    assert not report.ok
    return failed[VICTIM]


def _rewrite_keeping_record(path: Path, data: bytes) -> None:
    """Change a local object's bytes in place yet keep its stored record trusted.

    The record (size, CRC32C, SHA-256) stays trusted while size and mtime match
    it, so restoring the mtime leaves a record that no longer describes the bytes.
    """
    before = os.stat(path)
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


DAMAGE = {
    # A truncation after archiving: the listing no longer trusts its record, the manifest does.
    "truncated": lambda path: os.truncate(path, 100),
    # Same size, new bytes, new mtime: only the manifest still knows the content.
    "rewritten": lambda path: path.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes())),
    # Same size and mtime: the stored record is stale and claims the old content.
    "stale-record": lambda path: _rewrite_keeping_record(
        path, bytes(b ^ 0x5A for b in path.read_bytes())
    ),
    # The right CRC32C and a wrong SHA-256: only the SHA-256 check can see it.
    "same-crc32c": lambda path: _rewrite_keeping_record(path, same_crc32c(path.read_bytes())),
}


@pytest.mark.parametrize("dst_kind", KINDS)
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_local_object_fails_its_key(
    damage: str, dst_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory(dst_kind)
    keys = _archive(source, tmp_path)
    assert isinstance(source, LocalBackend)
    path = source.local_path(VICTIM)
    assert path is not None
    DAMAGE[damage](path)

    reason = _assert_only_victim_refused(sync(source, dest), dest, keys)
    assert reason


def test_cli_reports_a_truncated_object_by_its_key_and_exits_1(
    backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, dest = backend_factory("local"), backend_factory("local")
    _archive(source, tmp_path)
    path = source.local_path(VICTIM)
    assert path is not None
    os.truncate(path, 100)

    result = CliRunner().invoke(sync_command, [source.url, dest.url])
    assert result.exit_code == 1, result.output
    assert f"failed    {VICTIM} (" in result.output
    assert "truncated" in result.output
    assert f"failed    {MANIFEST} (held back" in result.output
    assert "Traceback" not in result.output
    assert dest.stat(VICTIM) is None and dest.stat(MANIFEST) is None


class _ChangesWhileRead(ProxyBackend):
    """A source whose victim object is replaced by other bytes of the same size while read."""

    def __init__(self, inner: Backend, tmp: Path, *, after_first_chunk: bool) -> None:
        super().__init__(inner)
        self.tmp = tmp
        self.after_first_chunk = after_first_chunk
        self.replaced = False

    def replace(self) -> None:
        data, _ = self.inner.get_bytes(VICTIM)
        other = bytes(b ^ 0x5A for b in data)
        crc, sha = hash_bytes(other)
        path = self.tmp / "replacement"
        path.write_bytes(other)
        # Written through the backend, so the object's own record matches its new bytes:
        # only what the sync learnt while planning says otherwise.
        self.inner.put_file(VICTIM, path, crc32c=crc, sha256=sha)
        self.replaced = True

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        if key != VICTIM:
            return super().open_read(key)
        if not self.after_first_chunk:
            self.replace()
            return super().open_read(key)
        return self._replaced_after_first_read(key)

    @contextmanager
    def _replaced_after_first_read(self, key: str) -> Iterator[BinaryIO]:
        proxy = self

        class Stream:
            def __init__(self, inner: BinaryIO) -> None:
                self.inner = inner

            def read(self, size: int = -1) -> bytes:
                chunk = self.inner.read(size)
                if not proxy.replaced:
                    proxy.replace()
                return chunk

        with self.inner.open_read(key) as stream:
            yield Stream(stream)  # type: ignore[misc]


@pytest.mark.parametrize("src_kind", ["s3", "gcs"])
def test_bytes_changing_while_read_from_the_source_fail_that_key(
    src_kind: str,
    make_storage_target: Callable[[str], StorageTarget],
    backend_factory: Callable[..., Backend],
    tmp_path: Path,
) -> None:
    target = make_storage_target(src_kind)
    if src_kind == "gcs":
        # Small ranged reads, so the object is read in several requests. The
        # emulator ignores the generation precondition on each range, so a change
        # between two of them really splices two versions: only the sync's own
        # proof against the recorded checksums can notice.
        target = target.with_options(gcs={"chunk_size": 256 * 1024})
    inner = backend_factory(target)
    keys = _archive(inner, tmp_path, size=3 * 1024 * 1024)
    # S3 serves one GET from one version, so there a change while sync reads
    # means the object was replaced after planning and before the GET.
    source = _ChangesWhileRead(inner, tmp_path, after_first_chunk=src_kind == "gcs")
    dest = backend_factory("local")

    report = sync(source, dest)
    assert source.replaced
    reason = _assert_only_victim_refused(report, dest, keys)
    assert "not the recorded content" in reason


class _ReplacedBeforeServerCopy(ProxyBackend):
    """A destination on the source's service whose source object changes just before the copy."""

    def __init__(self, inner: Backend, source: Backend, tmp: Path) -> None:
        super().__init__(inner)
        self.changer = _ChangesWhileRead(source, tmp, after_first_chunk=False)

    def copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool = False
    ) -> ObjectStat | None:
        if key == VICTIM:
            self.changer.replace()
        return super().copy_within(source, source_key, key, if_absent=if_absent)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_server_side_copy_is_proved_against_the_record(
    kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    source, inner_dest = backend_factory(kind), backend_factory(kind)
    keys = _archive(source, tmp_path)
    dest = _ReplacedBeforeServerCopy(inner_dest, source, tmp_path)

    report = sync(source, dest)
    assert dest.calls["copy_within"] == len(keys)
    assert all(
        i.server_side for i in report.items if i.outcome is Outcome.COPIED and ".webm" in i.key
    )
    reason = _assert_only_victim_refused(report, inner_dest, keys)
    assert "server-side copy" in reason


def _edit_manifest_entry(backend: Backend, field: str, value: Callable[[str], str]) -> None:
    data, stat = backend.get_bytes(MANIFEST)
    manifest = Manifest.from_json(data)
    found = 0
    for kinds in manifest.participants.values():
        for segments in kinds.values():
            for n, segment in enumerate(segments):
                if segment.key == VICTIM:
                    old = getattr(segment, field)
                    segments[n] = segment.model_copy(update={field: value(old)})
                    found += 1
    assert found == 1
    backend.put_bytes(MANIFEST, manifest.to_json(), if_version=stat.version)


def _other_crc32c(crc: str) -> str:
    return hash_bytes(crc.encode())[0]


@pytest.mark.parametrize(
    ("field", "change"),
    [("crc32c", _other_crc32c), ("sha256", lambda sha: sha[::-1])],
    ids=["wrong-crc32c", "wrong-sha256"],
)
def test_both_recorded_checksums_are_checked_on_streamed_copies(
    field: str,
    change: Callable[[str], str],
    backend_factory: Callable[..., Backend],
    tmp_path: Path,
) -> None:
    # S3 listings carry no checksum, so the manifest is the record the stream is proved
    # against; the object's bytes are intact and only one recorded checksum disagrees.
    source, dest = backend_factory("s3"), backend_factory("local")
    keys = _archive(source, tmp_path)
    _edit_manifest_entry(source, field, change)

    reason = _assert_only_victim_refused(sync(source, dest), dest, keys)
    assert ("CRC32C" if field == "crc32c" else "SHA-256") in reason


class _ShortReads(ProxyBackend):
    """A source whose stream of the victim ends early, as a short ranged read would."""

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        if key != VICTIM:
            return super().open_read(key)
        return self._short(key)

    @contextmanager
    def _short(self, key: str) -> Iterator[BinaryIO]:
        with self.inner.open_read(key) as stream:
            yield io.BytesIO(stream.read(100))


@pytest.mark.parametrize("src_kind", ["s3", "gcs"])
def test_a_source_serving_fewer_bytes_than_recorded_fails_that_key(
    src_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    inner = backend_factory(src_kind)
    keys = _archive(inner, tmp_path)
    dest = backend_factory("local")

    reason = _assert_only_victim_refused(sync(_ShortReads(inner), dest), dest, keys)
    assert "100 bytes where 1000 were recorded" in reason


@pytest.mark.parametrize("src_kind", ["local", "gcs"])
def test_an_object_replaced_after_archiving_is_refused_though_its_own_record_agrees(
    src_kind: str, backend_factory: Callable[..., Backend], tmp_path: Path
) -> None:
    # Rewritten through the backend: its stored checksums describe the new bytes and
    # the listing carries them, so only the manifest's record shows the change.
    source, dest = backend_factory(src_kind), backend_factory("local")
    keys = _archive(source, tmp_path)
    _ChangesWhileRead(source, tmp_path, after_first_chunk=False).replace()

    reason = _assert_only_victim_refused(sync(source, dest), dest, keys)
    assert "is not what its manifest records" in reason
