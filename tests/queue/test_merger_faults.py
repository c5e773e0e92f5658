"""A session whose manifest cannot be written holds up no other session's entries, on both brokers."""

from __future__ import annotations

import time

from pipeline.manifest import Failure, ManifestUpdate, utcnow
from pipeline.queue.app import BrokerSettings, make_app
from pipeline.queue.merger import publish_update
from tests.queue.conftest import Rig, Workers, wait_until


def _failure(n: int) -> Failure:
    return Failure(
        participantId="p",
        kind="audio",
        sourceUrl=f"https://cdn.videosdk.live/{n}.webm",
        reason="refused",
        at=utcnow(),
    )


def test_a_broken_manifest_stops_no_other_session_and_its_entries_wait(
    rig: Rig, workers: Workers
) -> None:
    with rig.open() as backend:
        backend.put_bytes("broken/manifest.json", b"edited by hand", content_type="text/plain")
    app = make_app(BrokerSettings(url=rig.broker.url, visibility_timeout=60))
    try:
        # More of the broken session's entries than one merge batch, queued first.
        for n in range(5):
            publish_update(app, ManifestUpdate(session_id="broken", failures=[_failure(n)]))
        publish_update(app, ManifestUpdate(session_id="fine", failures=[_failure(9)]))
    finally:
        app.close()
    rig.queue_options["merge_batch"] = 2
    worker = workers.start("worker-a")

    fine = wait_until(lambda: rig.manifest("fine"), 30, "the good session's manifest")
    assert len(fine.failures) == 1
    time.sleep(3)
    log = worker.text()
    # Said once, not once per pass over the queue.
    assert log.count("manifest of session broken not updated") == 1, log
    assert "Traceback" not in log

    with rig.open() as backend:
        backend.delete("broken/manifest.json")  # the operator's fix
    broken = wait_until(lambda: rig.manifest("broken"), 90, "the broken session's manifest")
    assert len(broken.failures) == 5
    assert worker.process.poll() is None
