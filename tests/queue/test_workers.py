"""Archiving through the broker with real worker processes, on Redis and on RabbitMQ."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import yaml

from pipeline.standin import Meeting
from tests.queue.conftest import (
    REPO,
    Rig,
    Workers,
    queued_tasks,
    summary_of,
    wait_until,
    webhooks_file,
)


def test_the_same_batch_queued_twice_is_archived_once_and_a_rerun_fetches_nothing(
    rig: Rig, workers: Workers, small_meeting: Meeting
) -> None:
    source = webhooks_file(rig, small_meeting)
    # Another machine queued the very same segments: two workers may take the same one at once.
    queued = rig.cli("archive", "--no-wait", str(source), name="other-machine")
    assert queued.returncode == 0, queued.stderr
    waiting = rig.start_cli("archive", "--json", str(source))
    wait_until(lambda: queued_tasks(rig) == 10, 60, "both batches on the queue")
    workers.start("worker-a")
    workers.start("worker-b")
    out, err = waiting.communicate(timeout=150)
    assert waiting.returncode == 0, err
    summary = json.loads(out)
    assert (summary["archived"], summary["skipped"], summary["failed"]) == (5, 0, 0)
    assert summary["bytes"] == sum(s.path.stat().st_size for s in small_meeting.segments)
    manifest = rig.manifest(small_meeting.session_id)
    assert manifest is not None
    assert manifest.totals.segmentCount == 5
    assert len({seg.key for _, _, seg in manifest.segments()}) == 5
    assert manifest.lifecycle["alice"]["audio"].state == "stopped"
    with rig.open() as backend:
        stored = [s.key for s in backend.list() if not s.key.endswith("manifest.json")]
    assert len(stored) == 5
    fetched = len(rig.origin.requests)

    again = rig.cli("archive", "--json", str(source))
    assert again.returncode == 0, again.stderr
    assert (summary_of(again)["archived"], summary_of(again)["skipped"]) == (0, 5)
    assert len(rig.origin.requests) == fetched


def test_a_batch_waiting_without_any_worker_says_so_then_finishes_when_one_starts(
    rig: Rig, workers: Workers, small_meeting: Meeting, tmp_path: Path
) -> None:
    source = webhooks_file(rig, small_meeting)
    command = rig.command("archive", "--json", str(source))
    # The rig writes its config afresh per command; this run's copy warns after one idle second.
    given = Path(command[command.index("--config") + 1])
    config = yaml.safe_load(given.read_text())
    config["queue"]["idle_warning"] = 1
    quick = tmp_path / "quick-warning.yaml"
    quick.write_text(yaml.safe_dump(config))
    command[command.index("--config") + 1] = str(quick)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    ) as waiting:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(waiting.stderr or []), daemon=True)
        reader.start()
        try:
            warning = wait_until(
                lambda: next((line for line in lines if "no worker answers" in line), None),
                60,
                "the warning that no worker answers",
            )
            assert "5 segment(s) wait in the queue" in warning
            assert "track-archive worker" in warning
            workers.start("worker-a")
            out = waiting.stdout.read() if waiting.stdout else ""
            waiting.wait(timeout=150)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait()
            reader.join(timeout=10)
    assert waiting.returncode == 0, "".join(lines)
    summary = json.loads(out)
    assert (summary["archived"], summary["failed"]) == (5, 0)
