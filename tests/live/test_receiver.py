"""The receiver's answers over real HTTP: signatures, sizes, shapes, duplicates, order."""

from __future__ import annotations

import base64
import json
import logging
import time

import httpx
import pytest

from pipeline.standin import SigningKey

from .conftest import (
    SIGNATURE_HEADER,
    Receiver,
    StandIn,
    StartReceiver,
    manifest_of,
    metric,
    post_signed,
    segments_done,
    wait_until,
)

SESSION = "sess-receiver"


def lifecycle(stage: str, participant: str = "alice", kind: str = "audio", **extra: object) -> dict:
    data = {"meetingId": "room-1", "sessionId": SESSION, "participantId": participant, "kind": kind}
    data.update(extra)
    return {"webhookType": f"participant-track-recording-{stage}", "data": data}


def stopped_for(standin: StandIn, participant: str = "alice", kind: str = "audio") -> dict:
    """A stopped webhook naming a real file the stand-in serves."""
    from pipeline.media import synth

    rel = f"individual-recordings/{SESSION}/{participant}/{kind}/track_recording_{participant}_{kind}_1762095600000.webm"
    path = standin.service.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    maker = synth.make_webm_audio if "audio" in kind else synth.make_webm_video
    maker(path, 0.5)
    files = [{"filePath": "/" + rel, "fileUrl": f"{standin.url}/{rel}"}]
    return lifecycle("stopped", participant, kind, fileDetails=files)


def event_count(receiver: Receiver) -> int:
    journal = receiver.journal()
    try:
        return journal.counts()["events"]
    finally:
        journal.close()


def test_valid_signature_is_committed_before_the_answer(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    response = post_signed(standin, receiver, lifecycle("started"))
    assert response.status_code == 200
    # The answer came after the commit: a second connection sees the delivery at once.
    assert event_count(receiver) == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({SIGNATURE_HEADER: "not base64!!"}, "not base64"),
        ({SIGNATURE_HEADER: base64.b64encode(b"\0" * 256).decode()}, "does not match"),
    ],
)
def test_missing_or_garbled_signature_is_refused(
    standin: StandIn, start_receiver: StartReceiver, headers: dict, reason: str
) -> None:
    receiver = start_receiver()
    body = json.dumps(lifecycle("started")).encode()
    response = httpx.post(receiver.webhook_url, content=body, headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["error"]
    assert event_count(receiver) == 0


def test_signature_by_another_key_or_over_other_bytes_is_refused(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    body = json.dumps(lifecycle("started")).encode()
    stranger = SigningKey()
    forged = httpx.post(
        receiver.webhook_url, content=body, headers={SIGNATURE_HEADER: stranger.sign(body)}
    )
    assert forged.status_code == 401
    _, headers = standin.service.signed(lifecycle("started"))
    tampered = json.dumps(lifecycle("started", participant="mallory")).encode()
    swapped = httpx.post(receiver.webhook_url, content=tampered, headers=headers)
    assert swapped.status_code == 401
    assert event_count(receiver) == 0
    assert metric(receiver, "track_archive_webhooks_rejected_total", reason="signature") == 2


def test_signature_over_compact_json_is_accepted(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    # Older senders sign JSON.stringify(body) while the body travels pretty-printed.
    receiver = start_receiver()
    payload = lifecycle("started")
    compact = json.dumps(payload, separators=(",", ":")).encode()
    pretty = json.dumps(payload, indent=2).encode()
    response = httpx.post(
        receiver.webhook_url,
        content=pretty,
        headers={SIGNATURE_HEADER: standin.service.key.sign(compact)},
    )
    assert response.status_code == 200
    assert event_count(receiver) == 1


def test_oversized_bodies_are_refused_whatever_the_headers_say(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver(**{"serve.max_body": 2048})
    payload = lifecycle("started", padding="x" * 4096)
    body, headers = standin.service.signed(payload)
    declared = httpx.post(receiver.webhook_url, content=body, headers=headers)
    assert declared.status_code == 413

    def chunks():  # no Content-Length: the receiver must count the bytes itself
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    streamed = httpx.post(receiver.webhook_url, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert event_count(receiver) == 0
    small = post_signed(standin, receiver, lifecycle("started"))
    assert small.status_code == 200


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (json.dumps({"data": {}}).encode(), "webhookType"),
        (json.dumps(lifecycle("started", kind="hologram")).encode(), "kind"),
        (json.dumps(lifecycle("stopped")).encode(), "lists no files"),
        (
            json.dumps(
                lifecycle("stopped", fileDetails=[{"fileUrl": "file:///etc/passwd"}])
            ).encode(),
            "fileUrl",
        ),
    ],
)
def test_malformed_bodies_get_400_with_a_reason(
    standin: StandIn, start_receiver: StartReceiver, payload: bytes, reason: str
) -> None:
    receiver = start_receiver()
    headers = {SIGNATURE_HEADER: standin.service.key.sign(payload)}
    response = httpx.post(receiver.webhook_url, content=payload, headers=headers)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert event_count(receiver) == 0


def test_unknown_webhook_types_are_accepted_but_not_archived(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    for kind in ("recording-started", "participant-track-recording-paused"):
        response = post_signed(standin, receiver, {"webhookType": kind, "data": {"x": 1}})
        assert response.status_code == 200
        assert response.json() == {"accepted": True, "archived": False}
    assert event_count(receiver) == 0
    received = metric(receiver, "track_archive_webhooks_received_total", type="recording-started")
    assert received == 1


def test_duplicates_and_any_order_archive_once(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    stopped = stopped_for(standin)
    deliveries = [stopped, lifecycle("started"), stopped, lifecycle("starting"), stopped]
    deliveries += [lifecycle("stopping"), lifecycle("started")]
    with httpx.Client(timeout=10) as client:
        for payload in deliveries:
            assert post_signed(standin, receiver, payload, client).status_code == 200
    wait_until(segments_done(receiver, 1), what="the segment archived")
    manifest = wait_until(
        lambda: (
            (m := manifest_of(receiver, SESSION))
            and m["lifecycle"].get("alice", {}).get("audio", {}).get("state") == "stopped"
            # Lifecycle and segment outcomes may reach the manifest in different flushes.
            and m["totals"]["segmentCount"] >= 1
            and m
        ),
        what="the manifest",
    )
    assert manifest["totals"]["segmentCount"] == 1
    assert len(manifest["participants"]["alice"]["audio"]) == 1
    report = receiver.session(SESSION).json()
    track = report["participants"]["alice"]["audio"]
    # A late "-started" does not undo the "-stopped"; duplicates are one delivery each.
    assert track["state"] == "stopped"
    assert track["seen"] == {"starting": 1, "started": 1, "stopping": 1, "stopped": 1}
    assert track["segments"] == {"done": 1}
    assert track["stuck"] is False


def test_recording_that_never_stops_is_flagged_stuck(
    standin: StandIn, start_receiver: StartReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipeline.live.workers")
    receiver = start_receiver(**{"serve.stuck_after": 0.3})
    post_signed(standin, receiver, lifecycle("started", participant="bob"))
    post_signed(standin, receiver, lifecycle("started", participant="carol"))
    post_signed(standin, receiver, lifecycle("failed", participant="carol"))
    time.sleep(0.4)
    report = receiver.session(SESSION).json()
    assert report["stuck"] == ["bob/audio"]
    assert report["participants"]["carol"]["audio"]["state"] == "failed"
    wait_until(
        lambda: any("bob/audio is started" in r.getMessage() for r in caplog.records),
        what="a warning about the stuck recording",
    )


def test_health_sessions_and_metrics_endpoints(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    health = httpx.get(receiver.url + "/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    assert receiver.session("no-such-session").status_code == 404
    assert receiver.session("..").status_code == 404
    metrics = httpx.get(receiver.url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert metric(receiver, "track_archive_queue_depth") == 0
    assert metric(receiver, "track_archive_download_seconds_bucket", le="+Inf") == 0
    # Every documented series is exposed under its documented name and labels.
    for name, labels in (
        ("track_archive_segments_total", {"outcome": "archived"}),
        ("track_archive_segments_total", {"outcome": "failed"}),
        ("track_archive_archived_bytes_total", {}),
        ("track_archive_download_seconds_sum", {}),
        ("track_archive_download_seconds_count", {}),
    ):
        assert metric(receiver, name, **labels) == 0, name
    post_signed(standin, receiver, lifecycle("started"))
    assert (
        metric(
            receiver,
            "track_archive_webhooks_received_total",
            type=lifecycle("started")["webhookType"],
        )
        == 1
    )
    assert "_created" not in httpx.get(receiver.url + "/metrics").text
