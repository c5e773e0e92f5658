"""``track-archive`` with one root whose segment copies wait at a gate the test opens.

A copy in a worker takes milliseconds: a test that must SIGKILL a worker in
the middle of a copy, or count the copies running at one moment, cannot rely
on timing. So real worker processes are started as ``python -m
tests.queue.gate worker ...`` instead of ``python -m pipeline.cli worker
...``: the same command, with the ``file`` and ``s3`` schemes registered
again so that the root named by ``TRACK_ARCHIVE_TEST_GATE_ROOT`` is wrapped in
a backend that holds each segment copy at one point of our own ``Backend``
contract (``TRACK_ARCHIVE_TEST_GATE_MODE``):

* ``read`` (a source): half of the object's bytes were read and staged by the
  copy; the next read waits;
* ``stored`` (a destination): the whole object is stored, ``put_file`` has
  not returned yet; a worker killed there dies after the write and before it
  acknowledges the task.

Each held copy is a file ``inflight/PID.KEYHASH`` in the gate directory
(``TRACK_ARCHIVE_TEST_GATE``), removed when the copy goes past the gate. On
arrival it appends to ``counts`` how many copies are in flight: the largest
count is the most copies that were ever past the start of a copy at once,
whatever the timing. A held copy goes on once ``release/NAME`` or ``open``
exists.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from storage_backends import Backend, FilePut, ObjectStat
from storage_backends.options import BackendOptions
from storage_backends.registry import register_backend
from tests.sync.builders import ProxyBackend

ENV_DIR = "TRACK_ARCHIVE_TEST_GATE"
ENV_MODE = "TRACK_ARCHIVE_TEST_GATE_MODE"
ENV_ROOT = "TRACK_ARCHIVE_TEST_GATE_ROOT"
POLL = 0.05


class Gate:
    """The test's side: where copies are held, and the switches that let them go on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("inflight", "release"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def env(self, mode: str, root: str) -> dict[str, str]:
        """The environment of a process whose ``root`` holds copies at ``mode``."""
        return {ENV_DIR: str(self.path), ENV_MODE: mode, ENV_ROOT: root}

    def held(self, pid: int | None = None) -> list[str]:
        """Copies waiting at the gate now (of process ``pid`` only, when given)."""
        names = sorted(p.name for p in (self.path / "inflight").iterdir())
        if pid is not None:
            names = [n for n in names if n.startswith(f"{pid}.")]
        return [n for n in names if not (self.path / "release" / n).exists()]

    def release(self, names: list[str]) -> None:
        """Let these held copies go on."""
        for name in names:
            (self.path / "release" / name).touch()

    def open(self) -> None:
        """Let every copy through, now and from now on."""
        (self.path / "open").touch()

    def counts(self) -> list[int]:
        """Copies in flight as seen by each copy arriving at the gate."""
        path = self.path / "counts"
        return [int(n) for n in path.read_text().split()] if path.exists() else []


class _Held:
    """One copy at the gate, on the worker's side."""

    def __init__(self, directory: Path, key: str) -> None:
        self.directory = directory
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        self.name = f"{os.getpid()}.{digest}"
        self.marker = directory / "inflight" / self.name

    def __enter__(self) -> _Held:
        self.marker.touch()
        in_flight = sum(1 for _ in (self.directory / "inflight").iterdir())
        # One short O_APPEND write per line: lines of several processes never interleave.
        fd = os.open(self.directory / "counts", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{in_flight}\n".encode())
        finally:
            os.close(fd)
        return self

    def wait(self) -> None:
        release = self.directory / "release" / self.name
        while not (release.exists() or (self.directory / "open").exists()):
            time.sleep(POLL)

    def __exit__(self, *exc: object) -> None:
        self.marker.unlink(missing_ok=True)


class _HalfThenWait:
    """A stream that hands out the first half of the object, then waits at the gate."""

    def __init__(self, stream: BinaryIO, half: int, held: _Held) -> None:
        self.stream, self.half, self.held, self.pos, self.passed = stream, half, held, 0, False

    def read(self, size: int = -1) -> bytes:
        if not self.passed and self.pos >= self.half:
            self.held.wait()
            self.passed = True
        if not self.passed:
            left = self.half - self.pos
            size = left if size < 0 else min(size, left)
        data = self.stream.read(size)
        self.pos += len(data)
        return data


class GatedBackend(ProxyBackend):
    """A real backend whose segment copies wait at the gate (see the module docstring)."""

    def __init__(self, inner: Backend, directory: Path, mode: str) -> None:
        super().__init__(inner)
        self.directory, self.mode = directory, mode

    def _gated(self, key: str, mode: str) -> bool:
        return self.mode == mode and not key.endswith("manifest.json")

    @contextmanager
    def _held_read(self, key: str) -> Iterator[BinaryIO]:
        stat = self.inner.stat(key)
        half = (stat.size if stat else 0) // 2
        with _Held(self.directory, key) as held, self.inner.open_read(key) as stream:
            yield _HalfThenWait(stream, half, held)  # type: ignore[misc]  # read() is all a copy uses

    def _open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        if self._gated(key, "read"):
            return self._held_read(key)
        return super()._open_read(key)

    def _put_file(self, path: Path, put: FilePut) -> ObjectStat:
        stat = super()._put_file(path, put)
        if self._gated(put.key, "stored"):
            with _Held(self.directory, put.key) as held:
                held.wait()
        return stat


def _gate(backend: Backend) -> Backend:
    if backend.url != os.environ.get(ENV_ROOT):
        return backend
    return GatedBackend(backend, Path(os.environ[ENV_DIR]), os.environ[ENV_MODE])


def _open_local(path: str, _prefix: str, options: BackendOptions) -> Backend:
    from storage_backends.local import LocalBackend

    return _gate(LocalBackend(Path(path), options.local))


def _open_s3(bucket: str, prefix: str, options: BackendOptions) -> Backend:
    from storage_backends.s3 import S3Backend

    return _gate(S3Backend(bucket, prefix, options.s3))


def main() -> None:
    """Run ``track-archive`` with the gated root."""
    register_backend("file", _open_local)
    register_backend("s3", _open_s3)
    from pipeline.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
