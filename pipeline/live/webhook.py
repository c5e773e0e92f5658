"""``POST /webhooks/videosdk``: one delivery verified, validated and committed, then answered.

This is the receiver's hot path, so it is a bare ASGI handler: no routing
table, no request or response objects, the common answers prepared once.
The body is read once (at most ``serve.max_body`` bytes, within
``serve.body_timeout``), its signature checked over those raw bytes, parsed
once, serialized once for the journal, and the answer goes out only after the
transaction holding the delivery has committed (see
:mod:`pipeline.journal.committer`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from ..archive import Archiver
from ..errors import InputError, JournalError
from ..events import OtherEvent, TrackEvent
from ..jsontext import JSONProblem, loads_bytes
from .errors import SignatureRejected
from .signature import SIGNATURE_HEADER
from .workers import ArchiveWorkers

if TYPE_CHECKING:
    from .app import LiveState

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/videosdk"

_SIGNATURE = SIGNATURE_HEADER.encode("ascii")
#: The two answers nearly every delivery gets, serialized once.
_ARCHIVED = b'{"accepted":true,"archived":true}'
_NOT_ARCHIVED = b'{"accepted":true,"archived":false}'


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""


class BodyTooSlow(Exception):
    """The request body did not arrive within the configured time."""


class ClientGone(Exception):
    """The client closed the connection before its body was complete."""


async def read_body(receive: Receive, declared: bytes | None, limit: int, seconds: float) -> bytes:
    """The body, counted as it arrives, within ``seconds``.

    ``declared`` (the ``Content-Length``) is only trusted to refuse early. The
    deadline keeps a client that drips its body from holding the connection
    (the server has none).
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    raise ClientGone
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise BodyTooSlow from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, reason: str, *, close: bool = False) -> None:
    body = json.dumps({"error": reason}, ensure_ascii=False, separators=(",", ":"))
    await _answer(send, status, body.encode("utf-8"), close=close)


async def receive_webhook(live: LiveState, scope: Scope, receive: Receive, send: Send) -> None:
    """Verify, validate and durably record one delivery, then answer."""
    metrics = live.metrics
    serve = live.config.serve
    declared = signature = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = value
        elif name == _SIGNATURE:
            signature = value
    try:
        body = await read_body(receive, declared, serve.max_body, serve.body_timeout)
    except ClientGone:
        return  # nobody to answer; nothing was recorded
    except BodyTooLarge:
        metrics.rejected.inc(reason="too_large")
        return await _error(send, 413, f"body larger than {serve.max_body} bytes")
    except BodyTooSlow:
        metrics.rejected.inc(reason="too_slow")
        reason = f"body not received within {serve.body_timeout} s"
        return await _error(send, 408, reason, close=True)
    if live.verifier is not None:
        try:
            header = None if signature is None else signature.decode("latin-1")
            form = live.verifier.verify(body, header)
        except SignatureRejected as exc:
            metrics.rejected.inc(reason="signature")
            log.warning("webhook refused: %s", exc)
            return await _error(send, 401, str(exc))
        if form != "raw":
            log.debug("webhook signature matched the body's compact JSON form")
    try:
        payload = loads_bytes(body)
    except JSONProblem as exc:
        metrics.rejected.inc(reason="malformed")
        return await _error(send, 400, f"body is not JSON this receiver can read: {exc.message}")
    try:
        event = await _record(live, payload)
    except InputError as exc:
        metrics.rejected.inc(reason="malformed")
        return await _error(send, 400, exc.reason)
    except (JournalError, OSError) as exc:
        # Not recorded: a 5xx makes the service deliver again later.
        metrics.rejected.inc(reason="unavailable")
        log.error("webhook not recorded: %s", exc)
        return await _error(send, 503, "the journal is unavailable; deliver again later")
    metrics.received.inc(type=event.webhookType[:80])
    if isinstance(event, OtherEvent):
        log.info("webhook type %r accepted but not archived", event.webhookType[:80])
        return await _answer(send, 200, _NOT_ARCHIVED)
    data = event.data
    live.stuck.observe((data.sessionId, data.participantId, data.kind), event.stage)
    if live.workers is not None:
        live.workers.wake()
    await _answer(send, 200, _ARCHIVED if data.fileDetails else _NOT_ARCHIVED)


class WebhookEndpoint:
    """:func:`receive_webhook` as an ASGI app bound to the receiver's shared state."""

    def __init__(self, live: LiveState) -> None:
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one delivery."""
        await receive_webhook(self.live, scope, receive, send)


async def _record(live: LiveState, payload: object) -> TrackEvent | OtherEvent:
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
