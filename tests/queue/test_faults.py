"""Faults on both brokers: a worker killed mid-download, a broker restart, malformed messages."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from pipeline.queue.app import SEGMENT_QUEUE, SEGMENT_TASK, BrokerSettings, make_app, segment_queue
from pipeline.standin import Meeting
from tests.queue.conftest import (
    Rig,
    Workers,
    finish,
    queued_tasks,
    running,
    summary_of,
    wait_until,
    webhooks_file,
)
from tests.queue.gate import Gate

#: Each file trickles out in about two seconds, so "mid-download" is a moment a test can hit.
SLOW = {"drip": (2048, 0.25)}


def _stored_segments(rig: Rig) -> list[str]:
    with rig.open() as backend:
        return sorted(s.key for s in backend.list() if not s.key.endswith("manifest.json"))


def _assert_archived_once_and_whole(rig: Rig, meeting: Meeting) -> None:
    """Each recorded file once in the archive, with its bytes; one manifest entry each."""
    manifest = rig.manifest(meeting.session_id)
    assert manifest is not None
    entries = [seg for _, _, seg in manifest.segments()]
    assert len({seg.key for seg in entries}) == len(entries) == len(meeting.segments)
    recorded = sorted(hashlib.sha256(s.path.read_bytes()).hexdigest() for s in meeting.segments)
    assert _stored_segments(rig) == sorted(seg.key for seg in entries)
    with rig.open() as backend:
        for seg in entries:
            data, _ = backend.get_bytes(seg.key)
            assert len(data) == seg.size and hashlib.sha256(data).hexdigest() == seg.sha256
    assert sorted(seg.sha256 for seg in entries) == recorded


def test_a_worker_killed_mid_download_leaves_its_segment_to_another_worker(
    rig: Rig, workers: Workers, small_meeting: Meeting
) -> None:
    source = webhooks_file(rig, small_meeting, **SLOW)
    first = workers.start("worker-a")
    with running(rig.start_cli("archive", "--json", str(source))) as waiting:
        # The first download has started and, dripping, cannot have finished yet.
        wait_until(lambda: rig.origin.requests, 60, "worker-a to start downloading")
        victim = rig.origin.requests[0].path
        first.kill()
        assert rig.origin.entries[victim].requests == 1
        workers.start("worker-b")
        code, out, err = finish(waiting)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["archived"], summary["failed"]) == (5, 0)
    # Fetched again, from the start, by the other worker: nothing lost...
    assert rig.origin.entries[victim].requests >= 2
    # ...and nothing stored or listed twice, every file whole.
    _assert_archived_once_and_whole(rig, small_meeting)


def test_a_worker_killed_after_storing_before_acknowledging_is_archived_once(
    rig: Rig, workers: Workers, small_meeting: Meeting, tmp_path: Path
) -> None:
    source = webhooks_file(rig, small_meeting)
    # Storing takes milliseconds: the gate holds worker-a right after its first object is
    # stored, before the task is acknowledged, so the kill lands there (tests/queue/gate.py).
    gate = Gate(tmp_path / "gate")
    first = workers.start("worker-a", env=gate.env("stored", rig.target.url))
    with running(rig.start_cli("archive", "--json", str(source))) as waiting:
        try:
            wait_until(lambda: gate.held(first.process.pid), 60, "worker-a past its first store")
            first.kill()
        finally:
            gate.open()  # nothing that is still alive waits at the gate any more
        assert len(_stored_segments(rig)) == 1
        workers.start("worker-b")
        code, out, err = finish(waiting)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["archived"], summary["failed"]) == (5, 0)
    _assert_archived_once_and_whole(rig, small_meeting)


def test_tasks_queued_across_a_broker_restart_are_all_archived(
    rig: Rig, workers: Workers, small_meeting: Meeting
) -> None:
    source = webhooks_file(rig, small_meeting)
    queued = rig.cli("archive", "--no-wait", str(source))
    assert queued.returncode == 0, queued.stderr
    assert "queued 5 segments" in queued.stdout
    rig.broker.restart()
    assert queued_tasks(rig) == 5
    workers.start("worker-a")

    def complete() -> bool:
        manifest = rig.manifest(small_meeting.session_id)
        return manifest is not None and len(manifest.segments()) == 5

    wait_until(complete, 90, "every queued segment in the manifest")
    assert len(_stored_segments(rig)) == 5


def test_a_malformed_message_fails_once_is_logged_and_is_not_redelivered(
    rig: Rig, workers: Workers, small_meeting: Meeting
) -> None:
    app = make_app(BrokerSettings(url=rig.broker.url, visibility_timeout=60))
    try:
        # A task message with the right name but not a job...
        app.send_task(SEGMENT_TASK, args=[{"sessionId": "x", "fileUrl": "file:///etc/passwd"}])
        # ...and one whose body cannot even be decoded.
        with app.producer_or_acquire() as producer:
            producer.publish(
                b"{not json",
                exchange=SEGMENT_QUEUE,
                routing_key=SEGMENT_QUEUE,
                content_type="application/json",
                content_encoding="utf-8",
                headers={"task": SEGMENT_TASK, "id": "undecodable-1", "lang": "py"},
                declare=[segment_queue()],
            )
    finally:
        app.close()
    worker = workers.start("worker-a")
    source = webhooks_file(rig, small_meeting)
    good = rig.cli("archive", "--json", str(source))
    # The worker went on to archive good work after the bad messages.
    assert good.returncode == 0, good.stderr
    assert summary_of(good)["archived"] == 5
    wait_until(lambda: queued_tasks(rig) == 0, 30, "the queue to be empty")
    time.sleep(2)  # long enough for a redelivery to show up in the log
    log = worker.text()
    assert log.count("malformed task message") == 1, log
    assert "field segment_id" in log or "field key" in log or "Field required" in log
    assert "undecodable-1" in log or "decode" in log.lower(), log
    assert worker.process.poll() is None
    assert queued_tasks(rig) == 0
