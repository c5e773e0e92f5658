"""Archiving through the broker with real worker processes, on Redis and on RabbitMQ."""

from __future__ import annotations

from pipeline.standin import Meeting
from tests.queue.conftest import Rig, Workers, summary_of, webhooks_file


def test_two_workers_archive_a_batch_once_and_a_rerun_fetches_nothing(
    rig: Rig, workers: Workers, small_meeting: Meeting
) -> None:
    source = webhooks_file(rig, small_meeting)
    workers.start("worker-a")
    workers.start("worker-b")

    first = rig.cli("archive", "--json", str(source))
    assert first.returncode == 0, first.stderr
    summary = summary_of(first)
    assert (summary["archived"], summary["skipped"], summary["failed"]) == (5, 0, 0)
    assert summary["bytes"] == sum(s.path.stat().st_size for s in small_meeting.segments)
    manifest = rig.manifest(small_meeting.session_id)
    assert manifest is not None
    assert manifest.totals.segmentCount == 5
    assert manifest.lifecycle["alice"]["audio"].state == "stopped"
    with rig.open() as backend:
        stored = [s.key for s in backend.list() if not s.key.endswith("manifest.json")]
    assert len(stored) == 5
    fetched = len(rig.origin.requests)

    again = rig.cli("archive", "--json", str(source))
    assert again.returncode == 0, again.stderr
    assert (summary_of(again)["archived"], summary_of(again)["skipped"]) == (0, 5)
    assert len(rig.origin.requests) == fetched
