"""``Downloader``: fetch a recording into a staging file and verify it, bytes to media."""

from __future__ import annotations

import asyncio
import http.cookiejar
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

import httpx

from pipeline.checks import Check, first_failure
from pipeline.download.errors import (
    NotYetAvailable,
    PermanentFailure,
    TransferFailed,
    TransientFailure,
    UrlRefused,
)
from pipeline.download.fetch import TooSlow, Transfer
from pipeline.download.policy import DownloadPolicy
from pipeline.download.result import DownloadResult
from pipeline.download.retry import RetryBudget
from pipeline.download.safety import Resolver, SafetyRules, system_resolver
from pipeline.download.source_checksum import compare
from pipeline.download.wire import wide_read_transport
from pipeline.segment import StreamSummary

USER_AGENT = "track-archive/0.1"


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Refuse every cookie: a source must never be able to set state we send back."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


class Downloader:
    """Downloads recordings with one shared connection pool and bounded concurrency.

    Use as ``async with Downloader(policy) as d: result = await d.fetch(url, dest)``;
    ``fetch`` may be called from many tasks at once.
    """

    def __init__(
        self,
        policy: DownloadPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ):
        self.policy = policy
        self._rules = SafetyRules(policy)
        self._transport = transport
        self._resolver: Resolver = resolver or system_resolver
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._verify_slots: asyncio.Semaphore | None = None
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Downloader:
        policy = self.policy
        limits = httpx.Limits(
            max_connections=policy.concurrency, max_keepalive_connections=policy.concurrency
        )
        self._client = httpx.AsyncClient(
            transport=self._transport or wide_read_transport(limits),
            timeout=httpx.Timeout(
                connect=policy.connect_timeout,
                read=policy.read_timeout,
                write=policy.read_timeout,
                # The semaphores already bound requests to the pool's size.
                pool=None,
            ),
            limits=limits,
            follow_redirects=False,
            # No proxies or .netrc credentials from the environment: pinning and "no
            # credentials ever sent" must hold whatever the environment says.
            trust_env=False,
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        self._slots = asyncio.Semaphore(policy.concurrency)
        # One media check at a time. PyAV lets go of the GIL around every packet it
        # reads (4-5 KiB of realistic VP8) and wants it back right after, so each packet
        # is a hand-off with any thread that wants the GIL meanwhile: two checks at once
        # hand it to each other as well as to the event loop, and measured more CPU and
        # a longer run than one (benchmarks/archive_bench.py has the figures). One check
        # still demuxes far faster than a segment downloads.
        self._verify_slots = asyncio.Semaphore(1)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @asynccontextmanager
    async def _host_limit(self, key: str) -> AsyncIterator[None]:
        slot = self._host_slots.setdefault(key, asyncio.Semaphore(self.policy.per_host))
        async with slot:
            yield

    async def fetch(
        self,
        url: str,
        dest: Path,
        *,
        kind: str | None = None,
        expected_size: int | None = None,
        expected_duration: float | None = None,
    ) -> DownloadResult:
        """Download ``url`` to ``dest`` and verify it; never raises for a per-file problem.

        ``dest`` is a staging path owned by the caller: it is created or replaced, and
        on failure it keeps whatever was staged so the caller can quarantine it.
        """
        if self._client is None or self._slots is None or self._verify_slots is None:
            raise RuntimeError("use the Downloader inside 'async with'")
        dest = Path(dest)
        try:
            self._rules.check(url)
        except UrlRefused as exc:
            return DownloadResult(
                ok=False,
                reason=str(exc),
                url=url,
                checks=[Check("url", False, "an allowed origin", exc.url, exc.reason)],
            )
        async with self._slots:
            transfer = Transfer(
                url,
                dest,
                client=self._client,
                policy=self.policy,
                rules=self._rules,
                resolver=self._resolver,
                host_limit=self._host_limit,
            )
            await transfer.open()
            try:
                checks, failure = await self._download(transfer)
            finally:
                await transfer.close()
        result = DownloadResult(
            ok=False,
            reason=failure,
            url=url,
            final_url=transfer.final_url,
            path=dest,
            size=transfer.offset,
            sha256=transfer.digests.sha256,
            crc32c=transfer.digests.crc32c,
            md5=transfer.digests.md5,
            attempts=transfer.requests,
            bytes_transferred=transfer.bytes_transferred,
            checks=checks,
            seal=transfer.staging.seal,
        )
        if failure is None:
            # Demuxing needs no connection: the slot goes to the next download meanwhile.
            async with self._verify_slots:
                await self._verify_media(result, kind, expected_duration)
            if expected_size is not None:
                result.checks.append(
                    Check(
                        "expected_size",
                        result.size == expected_size,
                        expected_size,
                        result.size,
                        "bytes",
                    )
                )
            failed = first_failure(result.checks)
            result.ok = failed is None
            result.reason = None if failed is None else failed.describe()
        return result

    async def _download(self, transfer: Transfer) -> tuple[list[Check], str | None]:
        """Transfer and check bytes (length, source checksum); at most one re-download."""
        started = time.monotonic()
        checks: list[Check] = []
        try:
            async with asyncio.timeout(self.policy.deadline):
                for round_ in (1, 2):
                    await self._transfer_with_retries(transfer)
                    transport = transfer.transport_check()
                    if not transport.ok:
                        return [transport], transport.describe()
                    source = compare(transfer.checksums, transfer.digests)
                    bad = first_failure(source)
                    if bad is None:
                        return [transport, *source], None
                    if round_ == 2:
                        return [transport, *source], (
                            f"{bad.describe()} (also after downloading again from scratch)"
                        )
                    await transfer.restart(f"source checksum mismatch: {bad.describe()}")
        except TimeoutError:
            elapsed = time.monotonic() - started
            checks.append(
                Check(
                    "deadline",
                    False,
                    f"done within {self.policy.deadline} s",
                    f"{transfer.offset} of {transfer.total or '?'} bytes after {elapsed:.1f} s",
                )
            )
        except TransferFailed as exc:
            checks.append(
                Check("transfer", False, "the file", exc.reason, f"{transfer.offset} bytes staged")
            )
        failed = checks[0]
        return checks, failed.describe()

    async def _transfer_with_retries(self, transfer: Transfer) -> None:
        budget = RetryBudget(self.policy)
        last: TransferFailed
        delay: float | None
        while True:
            try:
                await transfer.attempt()
                return
            except TooSlow as exc:
                delay, last = budget.next_delay(), exc
            except TransientFailure as exc:
                budget.progressed(transfer.offset)
                delay, last = budget.next_delay(retry_after=exc.retry_after), exc
            except NotYetAvailable as exc:
                delay, last = budget.not_found_delay(), exc
                if delay is None:
                    raise PermanentFailure(
                        f"HTTP {exc.status} for {budget.not_found_for:.1f} s "
                        f"(not_found_grace {self.policy.not_found_grace} s)",
                        status=exc.status,
                    ) from exc
            if delay is None:
                raise PermanentFailure(
                    f"gave up after {transfer.requests} requests "
                    f"({budget.failures} failed in a row): {last.reason}",
                    status=last.status,
                ) from last
            await asyncio.sleep(delay)

    async def _verify_media(
        self, result: DownloadResult, kind: str | None, expected_duration: float | None
    ) -> None:
        # Imported here so the download engine stays importable without PyAV loaded.
        from pipeline.media import inspect_media

        assert result.path is not None
        report = await asyncio.to_thread(
            inspect_media, result.path, kind=kind, expected_duration=expected_duration
        )
        result.checks.extend(report.checks)
        result.container = report.container
        result.streams = [StreamSummary(s.type, s.codec) for s in report.streams]
        result.duration_seconds = report.duration_seconds
        # Only what the media states: the names' epochs are weighed in ``StoredSegment.start``.
        result.started_at = report.started_at
