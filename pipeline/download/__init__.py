"""The download engine: one ``fileUrl`` in, a staged and verified file (or a clear failure) out.

::

    async with Downloader(DownloadPolicy()) as downloader:
        result = await downloader.fetch(url, staging / "segment.webm", kind="audio")

The names below load with the module that holds them, on first use: the config
file's ``download`` section is a ``DownloadPolicy``, and reading it must not
load httpx and the engine for commands that never download.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.download.engine import Downloader
    from pipeline.download.errors import DownloadError, UrlRefused
    from pipeline.download.on_demand import DownloaderOnDemand, Fetcher
    from pipeline.download.policy import DownloadPolicy
    from pipeline.download.result import DownloadResult
    from pipeline.download.safety import check_url
    from pipeline.segment import StreamSummary

#: Public name -> the module that defines it.
_HOMES = {
    "DownloadError": "pipeline.download.errors",
    "DownloadPolicy": "pipeline.download.policy",
    "DownloadResult": "pipeline.download.result",
    "Downloader": "pipeline.download.engine",
    "DownloaderOnDemand": "pipeline.download.on_demand",
    "Fetcher": "pipeline.download.on_demand",
    "StreamSummary": "pipeline.segment",
    "UrlRefused": "pipeline.download.errors",
    "check_url": "pipeline.download.safety",
}

__all__ = [
    "DownloadError",
    "DownloadPolicy",
    "DownloadResult",
    "Downloader",
    "DownloaderOnDemand",
    "Fetcher",
    "StreamSummary",
    "UrlRefused",
    "check_url",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
