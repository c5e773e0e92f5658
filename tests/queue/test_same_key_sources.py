"""One key, identical bytes, two source URLs: archive --broker finishes and counts both."""

from __future__ import annotations

from pipeline.standin import Meeting
from tests.archive.conftest import write_jsonl
from tests.queue.conftest import Rig, Workers, summary_of


def test_two_urls_with_the_same_bytes_for_one_key_do_not_hang_a_batch(
    rig: Rig, workers: Workers, small_meeting: Meeting
) -> None:
    segment = small_meeting.segments[0]
    rig.origin.add(segment.file_path, segment.path)  # the origin ignores the query string
    url = rig.origin.url_for(segment.file_path)
    body = {
        "webhookType": "participant-track-recording-stopped",
        "data": {
            "meetingId": small_meeting.meeting_id,
            "sessionId": small_meeting.session_id,
            "participantId": segment.participant_id,
            "kind": segment.kind,
            "fileDetails": [
                {"filePath": segment.file_path, "fileUrl": url},
                {"filePath": segment.file_path, "fileUrl": url + "?v=2"},
            ],
        },
    }
    source = write_jsonl(rig.tmp / "webhooks.jsonl", [body])
    # Both downloads run at once and their entries are merged in one write.
    rig.queue_options.update(concurrency=2, merge_wait=2.0)
    workers.start("worker-a")

    result = rig.cli("archive", "--json", str(source), timeout=60)

    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    assert summary["archived"] + summary["skipped"] == 2 and summary["failed"] == 0
    manifest = rig.manifest(small_meeting.session_id)
    assert manifest is not None
    (entry,) = [seg for _, _, seg in manifest.segments()]
    assert sorted(entry.source_urls()) == sorted([url, url + "?v=2"])
