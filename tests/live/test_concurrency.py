"""Many deliveries at once: every one answered 200 is in the journal, and every segment lands."""

from __future__ import annotations

import asyncio

import httpx

from pipeline.standin import generate_meeting, stopped_webhooks

from .conftest import Receiver, StandIn, StartReceiver, manifest_of, segments_done, wait_until

DELIVERIES = 200


async def _deliver_all(standin: StandIn, receiver: Receiver, payloads: list[dict]) -> list[int]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(payload: dict) -> int:
            body, headers = standin.service.signed(payload)
            response = await client.post(receiver.webhook_url, content=body, headers=headers)
            return response.status_code

        return await asyncio.gather(*(one(p) for p in payloads))


def test_200_concurrent_deliveries_none_lost(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    meeting = generate_meeting(standin.service.root, session_id="sess-burst")
    real = stopped_webhooks(meeting, standin.url)  # 6 tracks, 11 segments, 24 webhooks
    filler = [
        {
            "webhookType": f"participant-track-recording-{stage}",
            "data": {"sessionId": f"sess-{n % 7}", "participantId": f"p{n}", "kind": "audio"},
        }
        for n in range(DELIVERIES - len(real))
        for stage in ("started",)
    ]
    payloads = real + filler
    assert len(payloads) == DELIVERIES

    statuses = asyncio.run(_deliver_all(standin, receiver, payloads))

    assert statuses == [200] * DELIVERIES
    journal = receiver.journal()
    try:
        assert journal.counts()["events"] == DELIVERIES
    finally:
        journal.close()
    wait_until(segments_done(receiver, len(meeting.segments)), what="every segment archived")
    manifest = wait_until(
        lambda: (
            (m := manifest_of(receiver, "sess-burst"))
            and m["totals"]["segmentCount"] == len(meeting.segments)
            and m
        ),
        what="the manifest",
    )
    assert sum(
        len(segs) for kinds in manifest["participants"].values() for segs in kinds.values()
    ) == len(meeting.segments)
