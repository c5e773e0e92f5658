"""Local-disk behaviour the contract cannot express: the root boundary and temp files."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from storage_backends import (
    IntegrityError,
    InvalidKey,
    LocalOptions,
    PreconditionFailed,
    StorageError,
    hash_file,
)
from storage_backends import local as local_module
from storage_backends._streams import TEMP_PREFIX
from storage_backends.local import LocalBackend


@pytest.fixture
def store(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "root", LocalOptions(fsync=True))


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_symlinked_directory_pointing_outside_is_refused(
    store: LocalBackend, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "sess").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidKey, match="symlink"):
        store.put_bytes("sess/evil", b"x")
    with pytest.raises(InvalidKey):
        store.stat("sess/evil")
    assert list(outside.iterdir()) == []
    assert list(store.list()) == []  # listings never follow links either


def test_symlinked_file_is_neither_read_nor_replaced(store: LocalBackend, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"do not read")
    (store.root / "link").symlink_to(secret)
    with pytest.raises(InvalidKey):
        store.get_bytes("link")
    with pytest.raises(InvalidKey):
        store.put_bytes("link", b"overwrite")
    assert secret.read_bytes() == b"do not read"


def test_reserved_names_cannot_be_used_as_keys(store: LocalBackend) -> None:
    for key in (".track-archive.lock", f"a/{TEMP_PREFIX}x"):
        with pytest.raises(InvalidKey):
            store.put_bytes(key, b"x")


def test_failure_mid_copy_leaves_no_temp_file_and_no_object(
    store: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "seg"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    crc, sha, _ = hash_file(source)

    # A disk error half-way through the copy, injected at our own chunk reader:
    # a real full disk or I/O error cannot be provoked portably in a test.
    def failing_chunks(source_file):  # type: ignore[no-untyped-def]
        yield source_file.read(1024 * 1024)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(local_module, "_file_chunks", failing_chunks)
    with pytest.raises(StorageError, match="Input/output error"):
        store.put_file("s/p/audio/seg.webm", source, crc32c=crc, sha256=sha)

    assert store.stat("s/p/audio/seg.webm") is None
    assert _leftovers(store.root) == []


def test_integrity_failure_leaves_no_temp_file(store: LocalBackend, tmp_path: Path) -> None:
    source = tmp_path / "seg"
    source.write_bytes(b"abc")
    crc, sha, _ = hash_file(source)
    source.write_bytes(b"abd")  # changed after the caller hashed it
    with pytest.raises(IntegrityError):
        store.put_file("k", source, crc32c=crc, sha256=sha)
    assert _leftovers(store.root) == [] and store.stat("k") is None


def test_file_changed_in_place_gets_a_new_version_and_no_checksums(store: LocalBackend) -> None:
    written = store.put_bytes("doc", b"one")
    path = store.root / "doc"
    path.write_bytes(b"two!")  # edited behind the backend's back
    stat = store.stat("doc")
    assert stat is not None and stat.version != written.version
    assert stat.crc32c is None and stat.sha256 is None
    with pytest.raises(PreconditionFailed):
        store.put_bytes("doc", b"three", if_version=written.version)


def test_concurrent_swaps_from_one_version_have_exactly_one_winner(store: LocalBackend) -> None:
    base = store.put_bytes("manifest", b"0")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def writer(n: int) -> None:
        barrier.wait()
        try:
            store.put_bytes("manifest", str(n).encode(), if_version=base.version)
            outcomes.append("won")
        except PreconditionFailed:
            outcomes.append("lost")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert _leftovers(store.root) == []


def test_concurrent_creates_have_exactly_one_winner(store: LocalBackend, tmp_path: Path) -> None:
    sources = []
    for n in range(6):
        path = tmp_path / f"s{n}"
        path.write_bytes(f"segment {n}".encode())
        sources.append((path, *hash_file(path)[:2]))
    barrier = threading.Barrier(len(sources))
    winners: list[int] = []

    def create(n: int) -> None:
        path, crc, sha = sources[n]
        barrier.wait()
        try:
            store.put_file("seg", path, crc32c=crc, sha256=sha, if_absent=True)
            winners.append(n)
        except PreconditionFailed:
            pass

    threads = [threading.Thread(target=create, args=(n,)) for n in range(len(sources))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert store.get_bytes("seg")[0] == f"segment {winners[0]}".encode()
