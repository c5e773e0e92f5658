"""``serve`` gives up on a segment that keeps failing the same way; the quarantine stays bounded.

The receiver, its workers, the stand-in service and the archive root are
real. The persistent failure is injected at the project's own storage
boundary (a local backend whose ``put_file`` raises the ``OSError`` a name
too long for the file system gives): the real name rules are being made to
fit every backend, so a real name cannot be relied on to keep failing.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import Any

from pipeline.journal import SegmentState
from storage_backends.local import LocalBackend
from tests.live.conftest import StandIn, StartReceiver, manifest_of, post_signed, wait_until
from tests.live.test_receiver import SESSION, stopped_for


class NameTooLongBackend(LocalBackend):
    """A local archive whose file system refuses to store one participant's files."""

    def put_file(self, key: str, *args: Any, **kwargs: Any) -> Any:
        if "/doomed/" in key:
            raise OSError(errno.ENAMETOOLONG, "File name too long", key)
        return super().put_file(key, *args, **kwargs)


def _segment(receiver, participant):
    journal = receiver.journal()
    try:
        return next(r for r in journal.segments() if r.participant_id == participant)
    finally:
        journal.close()


def test_a_segment_that_keeps_failing_is_tried_a_bounded_number_of_times(
    standin: StandIn, start_receiver: StartReceiver, tmp_path: Path
) -> None:
    backend = NameTooLongBackend(tmp_path / "archive")
    receiver = start_receiver(
        backend=backend,
        **{"state.retry_attempts": 3, "state.retry_backoff": 0.05},
    )
    assert post_signed(standin, receiver, stopped_for(standin, "doomed")).status_code == 200
    assert post_signed(standin, receiver, stopped_for(standin, "alice")).status_code == 200
    failed = wait_until(
        lambda: (r := _segment(receiver, "doomed")).state is SegmentState.FAILED and r,
        what="the failing segment given up",
    )
    assert failed.attempts == 3
    assert "gave up after 3 attempts" in failed.error and "File name too long" in failed.error
    # The others go on (on a busy machine they may finish after the doomed one gave up).
    wait_until(
        lambda: _segment(receiver, "alice").state is SegmentState.DONE, what="alice archived"
    )
    time.sleep(1.0)  # a receiver still retrying would claim it again within this
    assert _segment(receiver, "doomed").attempts == 3
    manifest = wait_until(
        lambda: (m := manifest_of(receiver, SESSION)) and m.get("failures") and m,
        what="the failure in the manifest",
    )
    (failure,) = manifest["failures"]
    assert "gave up after 3 attempts" in failure["reason"]
    # One quarantined copy of the segment, however often it was fetched.
    quarantine = receiver.config.state.quarantine_dir
    assert sorted(p.name for p in quarantine.iterdir()) == [
        f"{failed.segment_id}.bytes",
        f"{failed.segment_id}.reason.json",
    ]
