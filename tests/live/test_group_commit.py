"""Concurrent deliveries share one journal commit, and none is answered before it is on disk.

The committer is held up the way a real one is: another connection holds the
journal's write lock (as a second process sharing the file would), so the
deliveries that arrive meanwhile queue behind the first commit and go to disk
together once the lock is released.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

from pipeline.journal import NewEvent, SQLiteJournal
from pipeline.journal.committer import GroupCommitter

from .conftest import StandIn, StartReceiver


def _event(n: int) -> NewEvent:
    return NewEvent(
        event_id=f"e{n}",
        webhook_type="participant-track-recording-started",
        payload_json=f'{{"n": {n}}}',
        source="test",
        session_id="s",
        participant_id=f"p{n}",
        kind="audio",
        segments=(),
    )


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_deliveries_queued_behind_a_commit_share_the_next_one(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "journal.sqlite3")
    holder = _hold_write_lock(journal.path)
    try:
        with GroupCommitter(journal) as committer:
            tasks = [asyncio.create_task(committer.record(_event(n))) for n in range(40)]
            await asyncio.sleep(0.3)
            # The journal cannot commit: nobody has an answer yet.
            assert not any(task.done() for task in tasks)
            holder.execute("COMMIT")
            assert await asyncio.gather(*tasks) == [True] * 40
            # The first delivery's commit, then one for all that queued meanwhile.
            assert committer.deliveries == 40
            assert committer.batches <= 2
            assert await committer.record(_event(0)) is False  # a duplicate
        assert journal.counts()["events"] == 40
    finally:
        holder.close()
        journal.close()


async def test_a_failed_commit_fails_every_delivery_it_held(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "journal.sqlite3")
    committer = GroupCommitter(journal).start()
    journal.close()  # the journal goes away under the committer
    try:
        results = await asyncio.gather(
            *(committer.record(_event(n)) for n in range(5)), return_exceptions=True
        )
    finally:
        committer.stop()
    assert all(type(r).__name__ == "JournalError" for r in results), results


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing from /metrics")


async def test_the_receiver_answers_only_after_the_shared_commit(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver()
    payloads = [
        {
            "webhookType": "participant-track-recording-started",
            "data": {"sessionId": "sess-group", "participantId": f"p{n}", "kind": "audio"},
        }
        for n in range(30)
    ]
    signed = [standin.service.signed(p) for p in payloads]
    holder = _hold_write_lock(receiver.config.state.journal)
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            tasks = [
                asyncio.create_task(
                    client.post(receiver.webhook_url, content=body, headers=headers)
                )
                for body, headers in signed
            ]
            await asyncio.sleep(1.0)
            assert not any(task.done() for task in tasks), "answered before the commit"
            holder.execute("COMMIT")
            answers = await asyncio.gather(*tasks)
    finally:
        holder.close()
    assert [a.status_code for a in answers] == [200] * len(payloads)
    journal = receiver.journal()
    try:
        assert journal.counts()["events"] == len(payloads)
    finally:
        journal.close()
    metrics = httpx.get(receiver.url + "/metrics", timeout=10).text
    assert _metric(metrics, "track_archive_deliveries_committed_total") == len(payloads)
    assert _metric(metrics, "track_archive_journal_commits_total") < len(payloads)


def test_deliveries_carry_their_segments_into_the_same_commit(
    standin: StandIn, start_receiver: StartReceiver
) -> None:
    receiver = start_receiver(tick=3600)
    rel = "individual-recordings/sess-jobs/alice/audio/track_recording_alice_audio_1.webm"
    payload = {
        "webhookType": "participant-track-recording-stopped",
        "data": {
            "sessionId": "sess-jobs",
            "participantId": "alice",
            "kind": "audio",
            "fileDetails": [{"filePath": "/" + rel, "fileUrl": f"{standin.url}/{rel}"}],
        },
    }
    body, headers = standin.service.signed(payload)
    assert httpx.post(receiver.webhook_url, content=body, headers=headers).status_code == 200
    journal = receiver.journal()
    try:
        # Queued with the delivery itself: nothing is left for a later expansion.
        assert journal.unprocessed_events() == []
        assert [s.session_id for s in journal.segments()] == ["sess-jobs"]
    finally:
        journal.close()
