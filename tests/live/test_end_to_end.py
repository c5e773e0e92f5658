"""The whole live flow: start, signed webhooks, stop, segments served, receiver, archive, manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.layout import segment_key
from pipeline.live.recording_api import RecordingApi, StartRequest

from .conftest import (
    TOKEN,
    Receiver,
    StandIn,
    StartReceiver,
    manifest_of,
    metric,
    segments_done,
    wait_until,
)

ROOM = "room-e2e"
TRACKS = (("alice", "audio"), ("bob", "video"))


def _record_meeting(standin: StandIn, receiver: Receiver) -> str:
    with RecordingApi(TOKEN, api_base=standin.url) as api:
        for participant, kind in TRACKS:
            api.start(
                StartRequest(
                    room_id=ROOM,
                    participant_id=participant,
                    kind=kind,
                    webhook_url=receiver.webhook_url,
                )
            )
        for participant, kind in TRACKS:
            api.stop(ROOM, participant, kind)
    return standin.service.session_of(ROOM)


def _check_archive(standin: StandIn, receiver: Receiver, session_id: str) -> None:
    files = [f for r in standin.service.recordings for f in r.files]
    assert len(files) == 4  # two segments per track
    wait_until(segments_done(receiver, len(files)), what="every segment archived")
    for recording in standin.service.recordings:
        for listed in recording.files:
            name = listed["filePath"].rsplit("/", 1)[-1]
            key = segment_key(session_id, recording.participant_id, recording.kind, name)
            data, _ = receiver.backend.get_bytes(key, max_size=10 * 1024 * 1024)
            served = (standin.service.root / listed["filePath"].lstrip("/")).read_bytes()
            assert hashlib.sha256(data).digest() == hashlib.sha256(served).digest()
    manifest = wait_until(
        lambda: (
            (m := manifest_of(receiver, session_id))
            and m["totals"]["segmentCount"] == 4
            and all(
                m["lifecycle"].get(p, {}).get(k, {}).get("state") == "stopped" for p, k in TRACKS
            )
            and m
        ),
        what="the manifest to list every segment and stopped lifecycles",
    )
    assert manifest["participants"]["alice"]["audio"][0]["sourceUrl"].startswith(standin.url)


def test_live_flow_lands_segments_and_manifest(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    session_id = _record_meeting(standin, receiver)
    deliveries = standin.service.wait_for_deliveries(4 * len(TRACKS))
    assert {d.status for d in deliveries} == {200}
    _check_archive(standin, receiver, session_id)

    report = receiver.session(session_id).json()
    assert report["participants"]["alice"]["audio"]["state"] == "stopped"
    assert report["participants"]["bob"]["video"]["segments"] == {"done": 2}
    assert report["stuck"] == []
    assert report["manifest"]["totals"]["segmentCount"] == 4

    stopped = {"type": "participant-track-recording-stopped"}
    assert metric(receiver, "track_archive_webhooks_received_total", **stopped) == 2
    assert metric(receiver, "track_archive_segments_total", outcome="archived") == 4
    assert metric(receiver, "track_archive_download_seconds_count") == 4


def test_live_flow_on_s3(
    standin: StandIn, start_receiver: StartReceiver, make_storage_target, tmp_path: Path
) -> None:
    target = make_storage_target("s3")
    with target.open() as backend:
        receiver = start_receiver(backend=backend, root=tmp_path / "s3-run")
        session_id = _record_meeting(standin, receiver)
        _check_archive(standin, receiver, session_id)
