"""``serve --broker``: receivers answer 200 while the broker is down and forward when it is back."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from pipeline.standin import Meeting, stopped_webhooks
from tests.fixtures.brokers import free_port
from tests.queue.conftest import REPO, Rig, Workers, wait_until


@pytest.fixture
def receivers(rig: Rig) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """Two receivers, each with its own journal, forwarding to the rig's broker."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name in ("receiver-a", "receiver-b"):
            port = free_port()
            command = rig.command("serve", "--no-verify", "--port", str(port), name=name)
            with (rig.tmp / f"{name}.log").open("ab") as log:
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            started.append((f"http://127.0.0.1:{port}", process))
        for url, _ in started:
            wait_until(lambda url=url: _healthy(url), 60, f"{url} to answer")
        yield started
    finally:
        for _, process in started:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _outbox_depth(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(r"^track_archive_outbox_depth (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


def test_every_delivery_answered_while_the_broker_is_down_is_archived_once_it_returns(
    rig: Rig,
    workers: Workers,
    small_meeting: Meeting,
    receivers: list[tuple[str, subprocess.Popen[bytes]]],
) -> None:
    for segment in small_meeting.segments:
        rig.origin.add(segment.file_path, segment.path)
    bodies = stopped_webhooks(small_meeting, rig.origin.base_url)
    rig.broker.stop()
    try:
        # Both receivers get every delivery (a retried webhook landing on another machine).
        for url, _ in receivers:
            for body in bodies:
                answer = httpx.post(
                    f"{url}/webhooks/videosdk", content=json.dumps(body), timeout=10
                )
                assert answer.status_code == 200, answer.text
        assert all(_outbox_depth(url) > 0 for url, _ in receivers)
    finally:
        rig.broker.start()
    workers.start("worker-a")

    def complete() -> bool:
        manifest = rig.manifest(small_meeting.session_id)
        return manifest is not None and len(manifest.segments()) == 5

    wait_until(complete, 120, "every delivered segment in the manifest")
    wait_until(lambda: all(_outbox_depth(url) == 0 for url, _ in receivers), 30, "empty outboxes")
    with rig.open() as backend:
        stored = [s.key for s in backend.list() if not s.key.endswith("manifest.json")]
    assert len(stored) == 5
    manifest = rig.manifest(small_meeting.session_id)
    assert manifest is not None
    assert len({seg.key for _, _, seg in manifest.segments()}) == 5
    assert manifest.lifecycle["bob"]["video"].state == "stopped"
