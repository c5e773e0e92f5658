"""A receiver killed after answering and before archiving loses nothing.

``serve`` runs as a real child process and is killed with SIGKILL (no
shutdown code runs, as in a power cut or an OOM kill) while its worker is
still waiting for the file. A new receiver on the same state directory then
archives the segment: the 200 meant the delivery was on disk.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from pipeline.journal import SegmentState
from pipeline.media import synth

from .conftest import StandIn, StartReceiver, manifest_of, segments_done, wait_until

SESSION = "sess-crash"
REL = f"individual-recordings/{SESSION}/alice/audio/track_recording_alice_audio_1762095600000.webm"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(tmp: Path, standin: StandIn) -> Path:
    config = {
        "backend": {"url": str(tmp / "archive")},
        "state": {
            "journal": str(tmp / "state" / "journal.sqlite3"),
            "staging": str(tmp / "state" / "staging"),
            "quarantine": str(tmp / "state" / "quarantine"),
        },
        # The file is missing while the child runs: it keeps retrying "not found" until killed.
        "download": {
            "allowed_origins": [standin.url],
            "not_found_grace": 120.0,
            "backoff_base": 0.05,
            "backoff_cap": 0.2,
        },
        "log_level": "warning",
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp / "key.pem").write_text(standin.service.key.public_pem, encoding="ascii")
    return path


@pytest.fixture
def child_serve(tmp_path: Path, standin: StandIn):
    """Start ``track-archive serve`` as a child process; always reaped at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(port: int) -> subprocess.Popen[bytes]:
        config = _write_config(tmp_path, standin)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from pipeline.cli import main; main()",
                "serve",
                "--config",
                str(config),
                "--public-key",
                str(tmp_path / "key.pem"),
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_killed_after_answering_then_restarted_archives_the_segment(
    tmp_path: Path, standin: StandIn, start_receiver: StartReceiver, child_serve
) -> None:
    port = _free_port()
    proc = child_serve(port)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, timeout=60, what="the child receiver to start")
    payload = {
        "webhookType": "participant-track-recording-stopped",
        "data": {
            "meetingId": "room-crash",
            "sessionId": SESSION,
            "participantId": "alice",
            "kind": "audio",
            "fileDetails": [{"filePath": "/" + REL, "fileUrl": f"{standin.url}/{REL}"}],
        },
    }
    body, headers = standin.service.signed(payload)
    answer = httpx.post(url + "/webhooks/videosdk", content=body, headers=headers, timeout=10)
    assert answer.status_code == 200

    # Wait until the child's worker holds the segment (it is fetching a file that 404s).
    from pipeline.journal import SQLiteJournal

    journal = SQLiteJournal(tmp_path / "state" / "journal.sqlite3")
    try:
        wait_until(
            lambda: journal.segments(states=(SegmentState.ACTIVE,)),
            what="the child to claim the segment",
        )
    finally:
        journal.close()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert not list((tmp_path / "archive").rglob("*.webm"))

    # The file becomes available; a new receiver on the same state resumes the claimed work.
    target = standin.service.root / REL
    target.parent.mkdir(parents=True, exist_ok=True)
    synth.make_webm_audio(target, 0.5)
    receiver = start_receiver(root=tmp_path)
    wait_until(segments_done(receiver, 1), what="the resumed segment archived")
    manifest = wait_until(
        lambda: (m := manifest_of(receiver, SESSION)) and m["totals"]["segmentCount"] == 1 and m,
        what="the manifest to list the segment",
    )
    (segment,) = manifest["participants"]["alice"]["audio"]
    assert segment["size"] == target.stat().st_size
    # The delivery was not lost and not duplicated: one event, one segment.
    journal = receiver.journal()
    try:
        assert journal.counts()["events"] == 1
        assert len(journal.segments()) == 1
    finally:
        journal.close()


async def _deliver_concurrently(url: str, signed: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post(url, content=body, headers=headers) for body, headers in signed)
        )
    return [a.status_code for a in answers]


def test_deliveries_answered_200_survive_a_sigkill_right_after_the_answers(
    tmp_path: Path, standin: StandIn, child_serve
) -> None:
    """Group commit answers a batch only once it is on disk: killing the process loses none."""
    port = _free_port()
    proc = child_serve(port)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, timeout=60, what="the child receiver to start")
    signed = [
        standin.service.signed(
            {
                "webhookType": "participant-track-recording-started",
                "data": {"sessionId": f"sess-kill-{n % 3}", "participantId": f"p{n}", "kind": "audio"},
            }
        )
        for n in range(60)
    ]
    statuses = asyncio.run(_deliver_concurrently(url + "/webhooks/videosdk", signed))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert statuses == [200] * len(signed)

    from pipeline.journal import SQLiteJournal

    journal = SQLiteJournal(tmp_path / "state" / "journal.sqlite3")
    try:
        assert journal.counts()["events"] == len(signed)
    finally:
        journal.close()
