"""A downloader that opens when the first download starts.

A run (``archive``, ``serve``, ``reconcile``) opens its parts before it knows
whether anything needs downloading. The engine's dependencies (httpx, httpcore,
h11, anyio, a TLS context) take about a fifth of a second of CPU to load, which a
run with nothing to fetch, or a progress bar waiting to be shown, should not pay.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipeline.download.engine import Downloader
    from pipeline.download.policy import DownloadPolicy
    from pipeline.download.result import DownloadResult


class Fetcher(Protocol):
    """What the archiver needs from a downloader: one verified download per call."""

    async def fetch(
        self,
        url: str,
        dest: Path,
        *,
        kind: str | None = None,
        expected_size: int | None = None,
        expected_duration: float | None = None,
    ) -> DownloadResult:
        """Download ``url`` to ``dest`` and verify it (see ``Downloader.fetch``)."""
        ...


class DownloaderOnDemand:
    """A :class:`Downloader` opened by the first ``fetch`` and closed with this context.

    Use as ``async with DownloaderOnDemand(policy) as d: await d.fetch(url, dest)``;
    ``fetch`` may be called from many tasks at once, and they share one engine.
    """

    def __init__(self, policy: DownloadPolicy) -> None:
        self.policy = policy
        self._engine: Downloader | None = None
        self._opening = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> DownloaderOnDemand:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.__aexit__(exc_type, exc, tb)

    @property
    def opened(self) -> bool:
        """Whether a download has started (and so the engine is loaded)."""
        return self._engine is not None

    async def fetch(
        self,
        url: str,
        dest: Path,
        *,
        kind: str | None = None,
        expected_size: int | None = None,
        expected_duration: float | None = None,
    ) -> DownloadResult:
        """Open the engine if this is the first download, then download as it does."""
        engine = self._engine or await self._open()
        return await engine.fetch(
            url, dest, kind=kind, expected_size=expected_size, expected_duration=expected_duration
        )

    async def _open(self) -> Downloader:
        async with self._opening:
            if self._closed:
                raise RuntimeError("the downloader was already closed")
            if self._engine is None:
                # Loaded on a thread: a receiver's event loop keeps answering meanwhile.
                engine = await asyncio.to_thread(
                    importlib.import_module, "pipeline.download.engine"
                )
                self._engine = await engine.Downloader(self.policy).__aenter__()
            return self._engine
