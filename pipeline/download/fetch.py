"""One file's transfer: requests with hand-followed redirects, streamed to the staging file.

``Transfer`` keeps the state that lets a later attempt resume where an earlier
one stopped: the staged offset, the validator for ``If-Range``, the declared
total and the running digests. Each call to ``attempt`` is one GET (plus its
redirect hops); a failure is raised as a ``TransferFailed`` subclass and the
retry decision is left to the engine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx

from pipeline.checks import Check
from pipeline.download.errors import (
    NotYetAvailable,
    PermanentFailure,
    TransientFailure,
    UrlRefused,
)
from pipeline.download.policy import DownloadPolicy
from pipeline.download.retry import NOT_YET_STATUSES, RETRYABLE_STATUSES, parse_retry_after
from pipeline.download.safety import Resolver, SafetyRules, Target, pinned_request_parts
from pipeline.download.source_checksum import SourceChecksum, announced_checksums, wants_md5
from pipeline.download.staging import StagingFile
from storage_backends.checksums import Hasher

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


class TooSlow(TransientFailure):
    """The body arrived below ``min_throughput``; progress made this way does not count."""


HostLimit = Callable[[str], AbstractAsyncContextManager[Any]]


class _ThroughputGuard:
    """Raises ``TooSlow`` when a window of ``window`` seconds brings under ``minimum`` B/s."""

    def __init__(self, minimum: int, window: float):
        self._minimum = minimum
        self._window = window
        self._start = time.monotonic()
        self._bytes = 0

    def count(self, size: int) -> None:
        """Account for ``size`` more bytes received now."""
        self._bytes += size
        now = time.monotonic()
        elapsed = now - self._start
        if elapsed >= self._window:
            rate = self._bytes / elapsed
            if rate < self._minimum:
                raise TooSlow(
                    f"{rate:.0f} B/s over {elapsed:.1f} s, below min_throughput {self._minimum} B/s"
                )
            self._start, self._bytes = now, 0


class Transfer:
    """The state of downloading one URL into one staging file, across attempts."""

    def __init__(
        self,
        url: str,
        dest: Path,
        *,
        client: httpx.AsyncClient,
        policy: DownloadPolicy,
        rules: SafetyRules,
        resolver: Resolver,
        host_limit: HostLimit,
    ):
        self.url = url
        self.dest = dest
        self._client = client
        self._policy = policy
        self._rules = rules
        self._resolver = resolver
        self._host_limit = host_limit
        self.staging = StagingFile(dest)
        self.total: int | None = None
        self.validator: str | None = None
        self.checksums: list[SourceChecksum] = []
        self.final_url: str | None = None
        self.requests = 0
        self.bytes_transferred = 0
        self.notes: list[str] = []

    @property
    def offset(self) -> int:
        """Bytes staged so far (where a resumed request starts)."""
        return self.staging.offset

    @property
    def digests(self) -> Hasher:
        """The running digests of the staged bytes."""
        return self.staging.digests

    async def open(self) -> None:
        """Create (or empty) the staging file."""
        await self.staging.open()

    async def close(self) -> None:
        """Finish writing, flush and close the staging file; its bytes stay on disk."""
        await self.staging.close()

    async def restart(self, why: str) -> None:
        """Drop what is staged and start over from byte 0 (the file changed, or was wrong)."""
        self.notes.append(f"restarted from byte 0 after {self.offset} bytes: {why}")
        await self.staging.reset(md5=False)
        self.total = None
        self.validator = None
        self.checksums = []

    async def attempt(self) -> None:
        """One GET of the file from the current offset, following redirects by hand."""
        if self.offset > 0 and self.validator is None:
            # Without a validator a range could splice two versions of the file together.
            await self.restart("the source gave no strong ETag or Last-Modified to resume against")
        url: httpx.URL | str = self.url
        for _hop in range(self._policy.max_redirects + 1):
            try:
                target = self._rules.check(url)
                address = await self._rules.pin(target, self._resolver)
            except UrlRefused as exc:
                raise PermanentFailure(str(exc)) from exc
            async with self._host_limit(target.host_key):
                response = await self._send(target, address)
                try:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise PermanentFailure(
                                f"HTTP {response.status_code} redirect without a Location"
                            )
                        # Join against the real URL, not the pinned address.
                        url = target.url.join(location)
                        continue
                    await self._consume(response)
                    self.final_url = str(target.url)
                    return
                finally:
                    await response.aclose()
        raise PermanentFailure(f"more than {self._policy.max_redirects} redirects")

    async def _send(self, target: Target, address: str) -> httpx.Response:
        request_url, headers, extensions = pinned_request_parts(target, address)
        if self.offset > 0 and self.validator is not None:
            headers["Range"] = f"bytes={self.offset}-"
            headers["If-Range"] = self.validator
        request = self._client.build_request(
            "GET", request_url, headers=headers, extensions=extensions
        )
        self.requests += 1
        try:
            return await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise TransientFailure(f"{type(exc).__name__} from {target.host}: {exc}") from exc

    async def _consume(self, response: httpx.Response) -> None:
        status = response.status_code
        if status in NOT_YET_STATUSES:
            raise NotYetAvailable(f"HTTP {status}", status=status)
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), cap=self._policy.retry_after_cap
            )
            raise TransientFailure(f"HTTP {status}", status=status, retry_after=retry_after)
        if status == 416 and self.offset > 0:
            await self._unsatisfiable(response)
            return
        if status == 206 and self.offset > 0:
            await self._check_resumed(response)
        elif status in (200, 206):
            if self.offset > 0:
                await self.restart(f"HTTP {status} without the requested range: the file changed")
            self._begin(response)
        else:
            raise PermanentFailure(f"HTTP {status} {response.reason_phrase}".strip(), status=status)
        await self._stream(response)

    def _begin(self, response: httpx.Response) -> None:
        headers = response.headers
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            # Identity was asked for; these bytes are an encoding of the file, not the file.
            raise PermanentFailure(
                f"the source sent the body with Content-Encoding: {encoding} "
                "although identity was asked for"
            )
        etag = headers.get("etag")
        strong = etag if etag and not etag.startswith("W/") else None
        self.validator = strong or headers.get("last-modified")
        self.total = None
        if response.status_code == 206:
            match = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
            if match is None or match.group(1) != "0" or match.group(3) == "*":
                raise TransientFailure("HTTP 206 without a usable Content-Range from byte 0")
            self.total = int(match.group(3))
        elif (length := headers.get("content-length")) is not None and length.isdigit():
            self.total = int(length)
        if self.total is not None and self.total > self._policy.max_size:
            raise PermanentFailure(
                f"the source declares {self.total} bytes, above max_size {self._policy.max_size}"
            )
        self.checksums = announced_checksums(headers, full_body=response.status_code == 200)
        # Nothing is staged yet (offset 0), so choosing the digests afresh loses nothing.
        self.staging.digests = Hasher(md5=wants_md5(self.checksums))

    async def _check_resumed(self, response: httpx.Response) -> None:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        if match is None:
            await self.restart("HTTP 206 without a readable Content-Range")
            raise TransientFailure("HTTP 206 without a readable Content-Range")
        start, total = int(match.group(1)), match.group(3)
        etag = response.headers.get("etag")
        if start != self.offset:
            await self.restart(f"Content-Range starts at {start}, expected {self.offset}")
            raise TransientFailure(f"Content-Range starts at {start}, expected {self.offset}")
        if total != "*" and self.total is not None and int(total) != self.total:
            await self.restart(f"Content-Range total {total} differs from {self.total}")
            raise TransientFailure(f"the file changed size from {self.total} to {total}")
        if etag and self.validator and self.validator.startswith('"') and etag != self.validator:
            await self.restart(f"ETag changed from {self.validator} to {etag}")
            raise TransientFailure("the file changed (ETag) between attempts")

    async def _unsatisfiable(self, response: httpx.Response) -> None:
        match = _UNSATISFIED_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        found = int(match.group(1)) if match else None
        if found is not None and found == self.offset and self.total in (None, found):
            # Everything was already staged: the previous attempt dropped after the last byte.
            self.notes.append(f"HTTP 416 at offset {self.offset}: the staged file is complete")
            self.total = found
            return
        if found is not None and found == self.offset:
            raise PermanentFailure(
                f"the source declared {self.total} bytes but holds {found}: "
                "its Content-Length was wrong"
            )
        await self.restart(f"HTTP 416 with source size {found} while {self.offset} bytes staged")
        raise TransientFailure("HTTP 416: the staged bytes do not match the source")

    async def _stream(self, response: httpx.Response) -> None:
        policy = self._policy
        staging = self.staging
        guard = _ThroughputGuard(policy.min_throughput, policy.throughput_window)
        batch: list[bytes] = []
        batch_size = 0
        received = self.offset
        try:
            async for piece in response.aiter_raw():
                size = len(piece)
                self.bytes_transferred += size
                received += size
                if received > policy.max_size:
                    raise PermanentFailure(
                        f"more than max_size {policy.max_size} bytes received; stopped"
                    )
                guard.count(size)
                batch.append(piece)
                batch_size += size
                if batch_size >= policy.chunk_size:
                    # Written and hashed in worker threads while the next batch arrives.
                    await staging.submit(batch)
                    batch, batch_size = [], 0
        except httpx.TransportError as exc:
            raise TransientFailure(f"{type(exc).__name__} after {received} bytes: {exc}") from exc
        finally:
            # Bytes that arrived before a failure are genuine: keep them for the resume.
            if batch:
                await staging.submit(batch)
            await staging.drain()
        if self.total is not None and self.offset < self.total:
            raise TransientFailure(f"body ended at {self.offset} of {self.total} bytes")

    def transport_check(self) -> Check:
        """Received bytes against the declared length; an empty file always fails."""
        if self.offset == 0:
            return Check("transport", False, self.total or "at least 1 byte", 0, "empty file")
        if self.total is None:
            return Check("transport", True, None, self.offset, "the source declared no length")
        return Check("transport", self.offset == self.total, self.total, self.offset, "bytes")
