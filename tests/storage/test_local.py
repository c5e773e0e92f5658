"""Local-disk behaviour the contract cannot express: the root boundary, temp files, locking."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pipeline.sync import sync
from storage_backends import (
    IntegrityError,
    InvalidKey,
    LocalOptions,
    PreconditionFailed,
    StorageError,
    hash_file,
)
from storage_backends import _local_meta as local_meta
from storage_backends import local as local_module
from storage_backends._local_temp import WORK_DIR
from storage_backends._streams import TEMP_PREFIX
from storage_backends.keys import INTERNAL_PREFIX
from storage_backends.local import LocalBackend

REPO = Path(__file__).resolve().parents[2]


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
    for key in (".track-archive.lock", ".track-archive-locks/00", f"a/{TEMP_PREFIX}x"):
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
    def failing_chunks(source_file, size=None):  # type: ignore[no-untyped-def]
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


# A writer in its own interpreter: threads share one process's state, two runs
# on one archive do not. Each waits for the go file so all race at once.
_RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from storage_backends import LocalOptions, PreconditionFailed
    from storage_backends.local import LocalBackend

    root, go, mode, version, label = sys.argv[1:]
    store = LocalBackend(Path(root), LocalOptions(fsync=True))
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        if mode == "swap":
            store.put_bytes("manifest", label.encode(), if_version=version)
        else:
            store.put_bytes("manifest", label.encode(), if_absent=True)
        print("won")
    except PreconditionFailed:
        print("lost")
    """
)


def _race_processes(store: LocalBackend, tmp_path: Path, mode: str, version: str) -> list[str]:
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(store.root), str(go), mode, version, f"p{n}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    time.sleep(0.5)  # let every interpreter start and reach its wait loop
    go.touch()
    outcomes = []
    for racer in racers:
        out, _ = racer.communicate(timeout=60)
        assert racer.returncode == 0
        outcomes.append(out.strip())
    return outcomes


def test_swaps_from_separate_processes_have_exactly_one_winner(
    store: LocalBackend, tmp_path: Path
) -> None:
    base = store.put_bytes("manifest", b"base")
    outcomes = _race_processes(store, tmp_path, "swap", str(base.version))
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    winner = f"p{outcomes.index('won')}".encode()
    assert store.get_bytes("manifest")[0] == winner
    assert _leftovers(store.root) == []


def test_creates_from_separate_processes_have_exactly_one_winner(
    store: LocalBackend, tmp_path: Path
) -> None:
    outcomes = _race_processes(store, tmp_path, "create", "-")
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    assert store.get_bytes("manifest")[0] == f"p{outcomes.index('won')}".encode()
    assert _leftovers(store.root) == []


def test_plain_write_waits_for_a_swap_between_its_check_and_its_rename(
    store: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = store.put_bytes("doc", b"base")
    checked, release = threading.Event(), threading.Event()
    real_version = LocalBackend._current_version

    # Pause the swap right after its version check, at our own boundary: only
    # then can a plain write try to slip in before the swap's rename.
    def slow_version(self: LocalBackend, path: Path, key: str) -> str | None:
        version = real_version(self, path, key)
        checked.set()
        release.wait(10)
        return version

    monkeypatch.setattr(LocalBackend, "_current_version", slow_version)
    swap = threading.Thread(
        target=store.put_bytes, args=("doc", b"swap"), kwargs={"if_version": base.version}
    )
    swap.start()
    assert checked.wait(10)
    plain_done = threading.Event()
    plain = threading.Thread(target=lambda: (store.put_bytes("doc", b"plain"), plain_done.set()))
    plain.start()
    # The plain write must not land while the swap still believes "base" is current.
    assert not plain_done.wait(0.3)
    release.set()
    swap.join(10)
    plain.join(10)
    assert plain_done.is_set()
    assert store.get_bytes("doc")[0] == b"plain"  # ordered after the swap, not lost under it


def test_writes_to_different_keys_do_not_wait_for_each_other(
    store: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked, release = threading.Event(), threading.Event()
    real_version = LocalBackend._current_version
    base = store.put_bytes("sess-a/manifest", b"a")

    def slow_version(self: LocalBackend, path: Path, key: str) -> str | None:
        checked.set()
        release.wait(10)
        return real_version(self, path, key)

    monkeypatch.setattr(LocalBackend, "_current_version", slow_version)
    swap = threading.Thread(
        target=store.put_bytes, args=("sess-a/manifest", b"a2"), kwargs={"if_version": base.version}
    )
    swap.start()
    try:
        assert checked.wait(10)
        # A swap sits on its lock; creates elsewhere (what a sync does) go ahead.
        for n in range(20):
            store.put_bytes(f"sess-b/seg{n}", b"x", if_absent=True)
    finally:
        release.set()
        swap.join(10)
    assert store.get_bytes("sess-a/manifest")[0] == b"a2"


def test_create_only_without_hard_links_still_refuses_a_second_create(
    store: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some filesystems (FAT, some network mounts) refuse hard links; that answer
    # is injected at the call the backend makes, since tmpfs/ext4 allow them.
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(local_module.os, "link", no_links)
    store.put_bytes("doc", b"first", if_absent=True)
    with pytest.raises(PreconditionFailed):
        store.put_bytes("doc", b"second", if_absent=True)
    assert store.get_bytes("doc")[0] == b"first"
    assert _leftovers(store.root) == []


def test_lock_and_temp_files_are_never_listed_or_synced(
    store: LocalBackend, tmp_path: Path
) -> None:
    first = store.put_bytes("s/m.json", b"{}")
    store.put_bytes("s/m.json", b"{ }", if_version=first.version)
    store.put_bytes("s/a.webm", b"a")
    store.delete("s/a.webm")
    store.put_bytes("s/b.webm", b"b", if_absent=True)
    # What a dead writer leaves where temp files need names, and lock files where
    # directories cannot be locked: both in the work directory, never an object.
    (store.root / WORK_DIR / "locks").mkdir(parents=True)
    (store.root / WORK_DIR / "locks" / "00").touch()
    (store.root / WORK_DIR / f"{TEMP_PREFIX}dead").write_bytes(b"partial")
    assert any(p.name.startswith(INTERNAL_PREFIX) for p in store.root.iterdir())

    assert [stat.key for stat in store.list()] == ["s/b.webm", "s/m.json"]
    copy = LocalBackend(tmp_path / "copy", LocalOptions(fsync=False))
    sync(store, copy)
    assert sorted(str(p.relative_to(copy.root)) for p in copy.root.rglob("*") if p.is_file()) == [
        "s/b.webm",
        "s/m.json",
    ]


def test_each_write_gets_a_new_version_and_reports_what_was_stored(store: LocalBackend) -> None:
    versions = set()
    for n in range(5):
        written = store.put_bytes("doc", f"v{n}".encode())
        assert written == store.stat("doc")  # the returned stat is the stored one
        versions.add(written.version)
    created = store.put_bytes("new", b"x", if_absent=True)
    assert created == store.stat("new")
    assert len(versions | {created.version}) == 6


def test_an_attribute_longer_than_the_read_buffer_is_read_back_whole(
    store: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checksums and metadata are read with one buffer sized for what we write;
    # ext4 keeps no attribute longer than that, so the buffer is shrunk here to
    # show that a longer one (possible on XFS or Btrfs) still comes back whole.
    written = store.put_bytes("s/doc.json", b"{}", metadata={"note": "kept " * 20})
    monkeypatch.setattr(local_meta, "_XATTR_BUFFER", 64)
    stat = store.stat("s/doc.json")
    assert stat == written and stat.sha256 is not None
    assert stat.metadata["note"] == "kept " * 20
    assert list(store.list("s/")) == [stat]
    data, read = store.get_bytes("s/doc.json")
    assert data == b"{}" and read == stat
