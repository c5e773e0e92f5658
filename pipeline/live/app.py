"""The webhook receiver: an ASGI app that commits each delivery before answering.

``POST /webhooks/videosdk`` reads at most ``serve.max_body`` bytes, verifies
the signature over those raw bytes, validates the body, and commits it to the
journal. Only then does it answer 200, so a delivery that got a 200 survives
a crash. Concurrent deliveries share one commit (see
:mod:`pipeline.journal.committer`): each request waits for the transaction
holding its delivery. Archiving is left to the background workers (see
:mod:`.workers`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from storage_backends import Backend, StorageError

from ..archive import Archiver, RetryPolicy
from ..config import Config
from ..download import DownloadPolicy
from ..errors import InputError, JournalError, TrackArchiveError
from ..events import OtherEvent, TrackEvent
from ..journal import SQLiteJournal
from ..journal.committer import GroupCommitter
from ..jsontext import JSONProblem, loads_bytes
from ..run import open_run
from .errors import SignatureRejected
from .lifecycle import StuckWatch
from .metrics import CONTENT_TYPE, ReceiverMetrics
from .sessions import session_report
from .signature import SIGNATURE_HEADER, SignatureVerifier
from .workers import ArchiveWorkers


class BackgroundWork(Protocol):
    """What the receiver runs beside answering: local workers, or a forwarder to a broker."""

    def wake(self) -> None:
        """A delivery was committed."""

    async def start(self) -> None:
        """Begin (pending work from an earlier process included)."""

    async def stop(self) -> None:
        """Stop; what is left stays in the journal."""


#: Builds the background work from the journal and the metrics (``serve --broker``).
BackgroundFactory = Callable[[SQLiteJournal, "ReceiverMetrics"], BackgroundWork]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/videosdk"


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""


class BodyTooSlow(Exception):
    """The request body did not arrive within the configured time."""


@dataclass
class LiveState:
    """What the app's handlers share, built by the lifespan."""

    config: Config
    backend: Backend
    verifier: SignatureVerifier | None
    metrics: ReceiverMetrics
    stuck: StuckWatch
    journal: SQLiteJournal | None = None
    committer: GroupCommitter | None = None
    archiver: Archiver | None = None
    workers: BackgroundWork | None = None


async def read_limited(request: Request, limit: int, seconds: float) -> bytes:
    """The body, counted as it arrives, within ``seconds``.

    ``Content-Length`` is only trusted to refuse early. The deadline keeps a
    client that drips its body from holding the connection (the server has none).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(chunks)


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def _state(request: Request) -> LiveState:
    state: LiveState = request.app.state.live
    return state


async def receive_webhook(request: Request) -> Response:
    """Verify, validate and durably record one delivery, then answer."""
    live = _state(request)
    metrics = live.metrics
    try:
        body = await read_limited(
            request, live.config.serve.max_body, live.config.serve.body_timeout
        )
    except BodyTooLarge:
        metrics.rejected.inc(reason="too_large")
        return _error(413, f"body larger than {live.config.serve.max_body} bytes")
    except BodyTooSlow:
        metrics.rejected.inc(reason="too_slow")
        response = _error(408, f"body not received within {live.config.serve.body_timeout} s")
        response.headers["Connection"] = "close"
        return response
    if live.verifier is not None:
        try:
            form = live.verifier.verify(body, request.headers.get(SIGNATURE_HEADER))
        except SignatureRejected as exc:
            metrics.rejected.inc(reason="signature")
            log.warning("webhook refused: %s", exc)
            return _error(401, str(exc))
        if form != "raw":
            log.debug("webhook signature matched the body's compact JSON form")
    try:
        payload = loads_bytes(body)
    except JSONProblem as exc:
        metrics.rejected.inc(reason="malformed")
        return _error(400, f"body is not JSON this receiver can read: {exc.message}")
    try:
        event = await _record(live, payload)
    except InputError as exc:
        metrics.rejected.inc(reason="malformed")
        return _error(400, exc.reason)
    except (JournalError, OSError) as exc:
        # Not recorded: a 5xx makes the service deliver again later.
        metrics.rejected.inc(reason="unavailable")
        log.error("webhook not recorded: %s", exc)
        return _error(503, "the journal is unavailable; deliver again later")
    metrics.received.inc(type=event.webhookType[:80])
    if isinstance(event, OtherEvent):
        log.info("webhook type %r accepted but not archived", event.webhookType[:80])
        return JSONResponse({"accepted": True, "archived": False})
    data = event.data
    live.stuck.observe((data.sessionId, data.participantId, data.kind), event.stage)
    if live.workers is not None:
        live.workers.wake()
    return JSONResponse({"accepted": True, "archived": bool(data.fileDetails)})


async def _record(live: LiveState, payload: Any) -> TrackEvent | OtherEvent:
    """Validate, then wait until the delivery and its segment jobs are on disk."""
    # Local workers take jobs committed with the delivery; a broker forwarder reads the
    # journal's unprocessed deliveries instead, so those are left for it to expand.
    local = isinstance(live.workers, ArchiveWorkers)
    delivery = Archiver.prepare(payload, source="webhook", with_segments=local)
    if delivery.record is not None:
        if live.committer is None:
            raise JournalError("the journal is not open")
        new = await live.committer.record(delivery.record)
        if new and delivery.jobs and isinstance(live.workers, ArchiveWorkers):
            live.workers.jobs_queued()
    return delivery.event


async def healthz(request: Request) -> Response:
    """Liveness plus a glance at the queue."""
    live = _state(request)
    if live.journal is None:
        return _error(503, "starting")
    try:
        counts = await asyncio.to_thread(live.journal.counts)
    except JournalError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)
    return JSONResponse(
        {"ok": True, "journal": counts, "verifySignatures": live.verifier is not None}
    )


async def session(request: Request) -> Response:
    """Each participant's lifecycle per kind, segment states, and the manifest summary."""
    live = _state(request)
    session_id: str = request.path_params["session_id"]
    if not session_id or len(session_id) > 512 or live.journal is None:
        return _error(404, "no such session")
    after = timedelta(seconds=live.config.serve.stuck_after)
    try:
        report = await asyncio.to_thread(
            session_report, live.journal, live.backend, session_id, datetime.now(UTC), after
        )
    except (TrackArchiveError, StorageError) as exc:
        return _error(503, str(exc))
    if report is None:
        return _error(404, "no such session")
    return JSONResponse(report)


async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    text = await asyncio.to_thread(_state(request).metrics.render)
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


def create_app(
    config: Config,
    *,
    backend: Backend,
    policy: DownloadPolicy | None = None,
    verifier: SignatureVerifier | None,
    tick: float = 30.0,
    background: BackgroundFactory | None = None,
) -> Starlette:
    """The receiver app; its lifespan opens the journal and runs the workers.

    ``verifier=None`` accepts unsigned deliveries (``--no-verify``).
    ``background`` replaces the local workers (``serve --broker`` forwards instead).
    """
    stuck = StuckWatch(timedelta(seconds=config.serve.stuck_after))
    holder: dict[str, SQLiteJournal] = {}
    # The running committer, read by /metrics (empty while the app is not serving).
    committers: list[GroupCommitter] = []

    def queue_depth() -> float:
        journal = holder.get("journal")
        if journal is None:
            return 0.0
        counts = journal.counts()
        return float(counts["pending"] + counts["active"] + counts["events_unprocessed"])

    live = LiveState(
        config=config,
        backend=backend,
        verifier=verifier,
        metrics=ReceiverMetrics(
            queue_depth,
            commits=lambda: float(sum(c.batches for c in committers)),
            committed=lambda: float(sum(c.deliveries for c in committers)),
        ),
        stuck=stuck,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        retry = RetryPolicy(
            max_attempts=config.state.retry_attempts, backoff=config.state.retry_backoff
        )
        async with open_run(config, backend=backend, policy=policy, retry=retry) as run:
            journal = run.journal
            holder["journal"] = journal
            live.journal = journal
            live.archiver = run.archiver
            committer = GroupCommitter(journal).start()
            committers.append(committer)
            try:
                await asyncio.to_thread(stuck.seed, journal.events())
                live.committer = committer
                live.workers = (
                    background(journal, live.metrics)
                    if background is not None
                    else ArchiveWorkers(
                        run.archiver,
                        concurrency=config.serve.workers,
                        metrics=live.metrics,
                        stuck=stuck,
                        tick=tick,
                    )
                )
                await live.workers.start()
                try:
                    yield
                finally:
                    if live.workers is not None:
                        await live.workers.stop()
                        live.workers = None
            finally:
                live.committer = None
                # Deliveries already queued are committed before the journal closes.
                await asyncio.to_thread(committer.stop)
                committers.remove(committer)
                live.archiver = None
                live.journal = None
                holder.pop("journal", None)

    app = Starlette(
        routes=[
            Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/sessions/{session_id}", session, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.live = live
    return app
