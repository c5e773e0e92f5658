"""The staging file of one download: bytes written and hashed off the event loop.

A body arrives as many small reads. They are gathered into batches of about
``chunk_size`` bytes; each batch is written with aiofiles while the digests run in a
second worker thread (hashlib and google-crc32c release the GIL on large buffers),
and the next batch is read from the network meanwhile. At most one batch is in
flight, so memory per download stays near two batches whatever the file size, and
the digests see the bytes in file order.

Closing a file whose every byte went through the digests seals it
(``storage_backends.sealed``): the store step can then trust the digests
instead of reading the file again, for as long as the seal holds.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiofiles

from storage_backends.checksums import Hasher
from storage_backends.sealed import FileSeal


class StagingFile:
    """An open staging file with its running digests; ``offset`` counts bytes on disk."""

    def __init__(self, path: Path):
        self.path = path
        self.digests = Hasher()
        self.offset = 0
        #: Set by ``close`` when the file on disk is exactly what the digests describe.
        self.seal: FileSeal | None = None
        self._file: Any = None
        self._in_flight: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None

    async def open(self) -> None:
        """Create the staging file (replacing any file of that name)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A new inode, never an old one truncated: a name left behind may share its
        # inode with an archived object (a stored file is linked, then unlinked here).
        self.path.unlink(missing_ok=True)
        self._file = await aiofiles.open(self.path, "xb", opener=_create)
        self.seal = None

    async def close(self) -> None:
        """Finish pending writes, flush and close; the bytes stay on disk, sealed if whole."""
        if self._file is not None:
            try:
                await self.drain()
            finally:
                await self._file.close()
                self._file = None
            if self._failed is None and self.offset == self.digests.size:
                self.seal = await asyncio.to_thread(FileSeal.apply, self.path)
                if self.seal.size != self.offset:
                    self.seal = None  # someone else wrote to it: let the store step hash it

    async def reset(self, *, md5: bool) -> None:
        """Empty the file and start the digests again (``md5`` says whether MD5 is needed)."""
        await self.drain()
        await self._file.seek(0)
        await self._file.truncate(0)
        self.offset = 0
        self.digests = Hasher(md5=md5)

    async def submit(self, batch: list[bytes]) -> None:
        """Queue ``batch`` to be written and hashed; waits while the previous one is in flight."""
        await self.drain()
        if self._failed is not None:
            # A batch that failed half-way left the file unlike the digests: add nothing after it.
            raise self._failed
        self._in_flight = asyncio.create_task(self._absorb(batch))

    async def drain(self) -> None:
        """Wait until every submitted batch is on disk and in the digests."""
        task = self._in_flight
        if task is None:
            return
        # Shielded: a cancelled download (its deadline) must not abandon a batch half done,
        # or ``offset`` and the digests would stop describing the bytes on disk.
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.shield(task)
            raise
        finally:
            if task.done():
                self._in_flight = None
                if not task.cancelled() and task.exception() is not None:
                    self._failed = task.exception()

    async def _absorb(self, batch: list[bytes]) -> None:
        await asyncio.gather(
            self._file.writelines(batch), asyncio.to_thread(self.digests.update_all, batch)
        )
        self.offset += sum(map(len, batch))


def _create(path: str, flags: int) -> int:
    # The mode every archived file gets, as the staged file may become one.
    return os.open(path, flags, 0o644)
