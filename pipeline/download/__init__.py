"""The download engine: one ``fileUrl`` in, a staged and verified file (or a clear failure) out.

::

    async with Downloader(DownloadPolicy()) as downloader:
        result = await downloader.fetch(url, staging / "segment.webm", kind="audio")
"""

from pipeline.download.engine import Downloader
from pipeline.download.errors import DownloadError, UrlRefused
from pipeline.download.policy import DownloadPolicy
from pipeline.download.result import DownloadResult
from pipeline.download.safety import check_url
from pipeline.segment import StreamSummary

__all__ = [
    "DownloadError",
    "DownloadPolicy",
    "DownloadResult",
    "Downloader",
    "StreamSummary",
    "UrlRefused",
    "check_url",
]
