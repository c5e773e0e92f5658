"""Bodies Python's parser trips on, sent to a real receiver: 400 or 401, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import SIGNATURE_HEADER, StandIn, StartReceiver

STARTED = {
    "webhookType": "participant-track-recording-started",
    "data": {"meetingId": "m", "sessionId": "hostile", "participantId": "p", "kind": "audio"},
}
GOOD = json.dumps(STARTED).encode()
HOSTILE = {
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"webhookType": "x", "data": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
    "huge integer": GOOD[:-2] + b', "n": ' + b"9" * 10_000 + b"}}",
    "lone surrogate": GOOD.replace(b'"p"', b'"\\ud800"'),
    "not utf-8": GOOD.replace(b'"p"', b'"p\xff"'),
}
REASONS = {
    "deep": "nested deeper than",
    "deep object": "nested deeper than",
    "huge integer": "integer of 10000 digits",
    "lone surrogate": "data.participantId: not valid Unicode",
    "not utf-8": "byte 0xff is not UTF-8",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_are_refused_with_a_reason_whatever_the_signature(
    standin: StandIn, start_receiver: StartReceiver, name: str
) -> None:
    receiver = start_receiver()
    body = HOSTILE[name]
    with httpx.Client(timeout=30) as client:
        signed = client.post(
            receiver.webhook_url,
            content=body,
            headers={SIGNATURE_HEADER: standin.service.key.sign(body)},
        )
        assert signed.status_code == 400, signed.text
        assert REASONS[name] in signed.json()["error"]
        # A bad signature makes the receiver try the body's compact JSON form too.
        forged = client.post(
            receiver.webhook_url,
            content=body,
            headers={SIGNATURE_HEADER: standin.service.key.sign(b"something else")},
        )
        assert forged.status_code == 401, forged.text
        unsigned = start_receiver(verify=False, root=receiver.config.state.journal.parent / "u")
        plain = client.post(unsigned.webhook_url, content=body)
        assert plain.status_code == 400, plain.text
        # The receiver still works.
        ok = client.post(
            receiver.webhook_url,
            content=GOOD,
            headers={SIGNATURE_HEADER: standin.service.key.sign(GOOD)},
        )
        assert ok.status_code == 200


def test_a_byte_order_mark_is_accepted(standin: StandIn, start_receiver: StartReceiver) -> None:
    receiver = start_receiver()
    body = b"\xef\xbb\xbf" + GOOD
    response = httpx.post(
        receiver.webhook_url,
        content=body,
        headers={SIGNATURE_HEADER: standin.service.key.sign(body)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
