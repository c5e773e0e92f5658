"""The local root holds only objects: no lock files, and nothing left by a writer killed midway."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import stat as stat_mod
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from pipeline.config import Config
from pipeline.run import open_configured_backend
from storage_backends import LocalOptions, PreconditionFailed
from storage_backends import _local_meta as local_meta
from storage_backends import _local_temp as local_temp
from storage_backends._local_temp import WORK_DIR
from storage_backends._streams import TEMP_PREFIX
from storage_backends.local import LocalBackend

REPO = Path(__file__).resolve().parents[2]
KEY = "sess/alice/audio/seg.webm"


@pytest.fixture
def store(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "root", LocalOptions(fsync=True))


def _everything_in(root: Path) -> list[str]:
    """Every file and directory under ``root`` as a relative path, hidden ones included."""
    found = []
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            found.append(str((Path(directory) / name).relative_to(root)))
    return sorted(found)


def _files_in(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def _race_swaps(store: LocalBackend, key: str, writers: int = 6) -> list[str]:
    """Threads swapping ``key`` from the same version at once; each says "won" or "lost"."""
    base = store.put_bytes(key, b"base")
    outcomes: list[str] = []

    def swap(n: int) -> None:
        try:
            store.put_bytes(key, str(n).encode(), if_version=base.version)
            outcomes.append("won")
        except PreconditionFailed:
            outcomes.append("lost")

    threads = [threading.Thread(target=swap, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_root_holds_only_objects_after_creates_swaps_replaces_and_deletes(
    store: LocalBackend,
) -> None:
    first = store.put_bytes("s/manifest.json", b"{}", if_absent=True)
    store.put_bytes("s/manifest.json", b"{ }", if_version=first.version)
    store.put_bytes("s/manifest.json", b"{  }")  # a plain replacing write
    store.put_bytes("s/p/audio/a.webm", b"a")
    store.delete("s/p/audio/a.webm")
    with pytest.raises(PreconditionFailed):
        store.put_bytes("s/manifest.json", b"x", if_absent=True)
    assert sorted(_race_swaps(store, "t/manifest.json")) == ["lost"] * 5 + ["won"]
    store.close()  # the run ends

    # No lock files, no work directory, no temp names: only objects and their directories.
    assert _everything_in(store.root) == [
        "s",
        "s/manifest.json",
        "s/p",
        "s/p/audio",
        "t",
        "t/manifest.json",
    ]


def _without_o_tmpfile(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine's filesystem makes nameless files; NFS, SMB and FUSE answer
    # O_TMPFILE with EOPNOTSUPP. That answer is injected at the one call that asks.
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(local_temp.os, "open", refusing_open)


def test_without_nameless_files_writes_go_through_the_work_dir_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_o_tmpfile(monkeypatch)
    store = LocalBackend(tmp_path / "root", LocalOptions(fsync=True))
    first = store.put_bytes("s/manifest.json", b"{}", if_absent=True)
    store.put_bytes("s/manifest.json", b"{ }", if_version=first.version)
    with pytest.raises(PreconditionFailed):
        store.put_bytes("s/manifest.json", b"x", if_absent=True)
    assert store.get_bytes("s/manifest.json")[0] == b"{ }"
    store.close()
    assert _everything_in(store.root) == ["s", "s/manifest.json"]


def test_directories_that_cannot_be_locked_fall_back_to_lock_files_in_the_work_dir(
    store: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NFS emulates flock with byte-range locks, which a directory opened
    # read-only cannot take (EBADF); injected at the call, as ext4 allows it.
    real_flock = fcntl.flock

    def nfs_like_flock(fd: int, operation: int) -> None:
        if stat_mod.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_flock(fd, operation)

    monkeypatch.setattr(local_meta.fcntl, "flock", nfs_like_flock)
    assert sorted(_race_swaps(store, "s/manifest.json")) == ["lost"] * 5 + ["won"]
    assert (store.root / WORK_DIR / "locks").is_dir()
    assert [stat.key for stat in store.list()] == ["s/manifest.json"]


# A run writing one large segment slowly, as from a busy disk: the slowness is
# injected at the backend's own chunk reader, since a real slow disk cannot be
# made on demand. With "named" it runs as on a system without O_TMPFILE (macOS,
# NFS), where temp files have a name from the start.
_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from storage_backends import LocalOptions, hash_file
    from storage_backends import _local_temp, local

    root, source, key, mode = sys.argv[1:]
    if mode == "named":
        _local_temp._O_TMPFILE = None

    def slow_chunks(source_file, size=None):
        while chunk := source_file.read(1024 * 1024):
            yield chunk
            time.sleep(0.05)

    local._file_chunks = slow_chunks
    crc, sha, _ = hash_file(Path(source))
    store = local.LocalBackend(Path(root), LocalOptions(fsync=True))
    store.put_file(key, Path(source), crc32c=crc, sha256=sha)
    print("stored")
    """
)


class SlowWriter:
    """A writer process that takes seconds to store one segment."""

    def __init__(self, root: Path, tmp_path: Path, mode: str) -> None:
        self.root = root.resolve()
        self.source = tmp_path / f"source-{mode}"
        self.source.write_bytes(os.urandom(48 * 1024 * 1024))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SLOW_WRITER, str(root), str(self.source), KEY, mode],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate(timeout=30)

    def finish(self) -> str:
        out, _ = self.process.communicate(timeout=120)
        return out.strip()

    def temp_files(self) -> dict[str, int]:
        """The writer's open temp files in the root (nameless or named), with their sizes."""
        found = {}
        for fd in os.listdir(f"/proc/{self.process.pid}/fd"):
            link = f"/proc/{self.process.pid}/fd/{fd}"
            with suppress(FileNotFoundError):
                target = os.readlink(link)
                if target.startswith(str(self.root)) and (
                    "(deleted)" in target or TEMP_PREFIX in target
                ):
                    found[target] = os.stat(link).st_size
        return found

    def wait_mid_write(self) -> list[str]:
        """Wait until the writer has a temp file with some bytes in it; return its names."""
        _wait_for(lambda: any(self.temp_files().values()), "the writer's first bytes")
        return list(self.temp_files())


def _wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[list[SlowWriter]]:
    started: list[SlowWriter] = []
    yield started
    for writer in started:  # never leave a writer running
        if writer.process.poll() is None:
            writer.kill()


def _config(root: Path, **local: object) -> Config:
    return Config().override(
        **{"backend.url": str(root), **{f"backend.local.{k}": v for k, v in local.items()}}
    )


def test_a_writer_killed_mid_write_leaves_nothing_in_the_root(
    tmp_path: Path, writers: list[SlowWriter]
) -> None:
    root = tmp_path / "root"
    writer = SlowWriter(root, tmp_path, "nameless")
    writers.append(writer)
    # Mid-write: the bytes sit in a file that has no name, in the segment's directory.
    temps = writer.wait_mid_write()
    assert temps and all(
        name.startswith(str(root.resolve() / "sess/alice/audio/#")) for name in temps
    )
    assert _files_in(root) == []

    writer.kill()

    with open_configured_backend(_config(root, leftover_age=0)) as backend:
        assert list(backend.list()) == []
    assert _files_in(root) == []


def test_a_named_temp_file_a_killed_writer_left_is_removed_by_the_next_run(
    tmp_path: Path, writers: list[SlowWriter], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    writer = SlowWriter(root, tmp_path, "named")
    writers.append(writer)
    writer.wait_mid_write()
    writer.kill()
    left = list((root / WORK_DIR).iterdir())
    assert len(left) == 1 and left[0].name.startswith(TEMP_PREFIX)
    assert left[0].stat().st_size > 0

    # The default age (15 minutes) protects a temp file that might still be in use elsewhere.
    with open_configured_backend(_config(root)) as backend:
        assert list(backend.list()) == []
    assert left[0].exists()

    caplog.set_level(logging.INFO, logger="pipeline.run")
    with open_configured_backend(_config(root, leftover_age=0)) as backend:
        assert list(backend.list()) == []
    assert _everything_in(root) == ["sess", "sess/alice", "sess/alice/audio"]
    assert "removed 1 leftover(s) of interrupted writes" in caplog.text


def test_a_live_writers_named_temp_file_is_never_cleaned(
    tmp_path: Path, writers: list[SlowWriter]
) -> None:
    root = tmp_path / "root"
    writer = SlowWriter(root, tmp_path, "named")
    writers.append(writer)
    writer.wait_mid_write()

    # Another run starts meanwhile, with no age limit at all: the lock alone protects.
    with open_configured_backend(_config(root, leftover_age=0)) as other_run:
        assert other_run.clean_leftovers() == 0
        assert writer.finish() == "stored"
        content = writer.source.read_bytes()
        assert other_run.get_bytes(KEY, max_size=len(content))[0] == content
    assert _files_in(root) == [KEY]


def test_a_run_goes_on_when_cleaning_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / WORK_DIR).write_bytes(b"not a directory")  # something no cleaner can read

    with open_configured_backend(_config(root)) as backend:
        assert backend.stat("x") is None
    assert "could not clean what interrupted writes left in" in caplog.text
