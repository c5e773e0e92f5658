"""The webhook receiver: an ASGI app that commits each delivery before answering.

``POST /webhooks/videosdk`` reads at most ``serve.max_body`` bytes, verifies
the signature over those raw bytes, validates the body, and commits it to the
journal. Only then does it answer 200, so a delivery that got a 200 survives
a crash. Concurrent deliveries share one commit (see
:mod:`pipeline.journal.committer`): each request waits for the transaction
holding its delivery. That route is served by a bare handler (see
:mod:`.webhook`); the others, and the lifespan that opens the journal and
runs the background workers (see :mod:`.workers`), by Starlette.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from storage_backends import Backend, StorageError

from ..archive import Archiver, RetryPolicy
from ..config import Config
from ..download import DownloadPolicy
from ..errors import JournalError, TrackArchiveError
from ..journal import SQLiteJournal
from ..journal.committer import GroupCommitter
from ..run import open_run
from .lifecycle import StuckWatch
from .metrics import CONTENT_TYPE, ReceiverMetrics
from .sessions import session_report
from .signature import SignatureVerifier
from .webhook import WEBHOOK_PATH, WebhookEndpoint
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

__all__ = ["WEBHOOK_PATH", "BackgroundFactory", "BackgroundWork", "ReceiverApp", "create_app"]


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


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def _state(request: Request) -> LiveState:
    state: LiveState = request.app.state.live
    return state


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


class ReceiverApp:
    """The receiver as one ASGI app: webhook deliveries straight to their handler.

    Every delivery takes the bare handler; anything else (the lifespan, the
    GET routes, another method on the webhook path) goes to Starlette.
    """

    def __init__(self, webhook: WebhookEndpoint, routes: Starlette) -> None:
        self.webhook = webhook
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection."""
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            await self.webhook(scope, receive, send)
        else:
            await self.routes(scope, receive, send)


def create_app(
    config: Config,
    *,
    backend: Backend,
    policy: DownloadPolicy | None = None,
    verifier: SignatureVerifier | None,
    tick: float = 30.0,
    background: BackgroundFactory | None = None,
) -> ReceiverApp:
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

    webhook = WebhookEndpoint(live)
    app = Starlette(
        routes=[
            # Starlette still answers other methods on this path (405, Allow: POST).
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/sessions/{session_id}", session, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.live = live
    return ReceiverApp(webhook, app)
