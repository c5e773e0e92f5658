"""``track-archive demo --live``: the live flow on this machine, no network, no credentials.

A stand-in recording service and a real receiver (the ``serve`` app) run on
127.0.0.1. Recordings are started and stopped through the API client; the
stand-in signs its webhooks and delivers them to the receiver, whose workers
archive each segment while this shows them landing.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..config import Config
from ..journal import SegmentState, SQLiteJournal
from ..live import WEBHOOK_PATH, SignatureVerifier, create_app
from ..live.recording_api import RecordingApi, StartRequest
from ..live.runner import ServerThread
from ..manifest import read_manifest
from ..run import open_configured_backend
from ..standin import RecordingService, StandInServer
from .common import EXIT_FAILED, EXIT_OK, setup_logging
from .report import print_manifest

ROOM = "demo-room"
TRACKS = (("alice", "audio"), ("alice", "video"), ("bob", "screen_audio"))
#: Seconds to wait for every segment before giving up.
DEADLINE = 120.0


def run_live_demo(out_dir: Path) -> int:
    """Run the live demo under ``out_dir``; return the exit code."""
    out_dir = out_dir.resolve()
    service = RecordingService(out_dir / "service-live", segment_seconds=(1.5, 1.0))
    key_file = out_dir / "videosdk-public-key.pem"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(service.key.public_pem, encoding="ascii")
    setup_logging("warning")
    with StandInServer(service.app()) as standin:
        config = Config().override(
            **{
                "backend.url": str(out_dir / "archive"),
                "download.allowed_origins": [standin.url],
                "state.journal": str(out_dir / "state-live" / "journal.sqlite3"),
                "serve.public_key": str(key_file),
            }
        )
        with open_configured_backend(config) as backend:
            app = create_app(
                config,
                backend=backend,
                verifier=SignatureVerifier.from_file(key_file),
                tick=1.0,
            )
            with ServerThread(app) as receiver:
                click.echo(f"stand-in recording service: {standin.url}")
                click.echo(f"receiver (track-archive serve): {receiver.url}{WEBHOOK_PATH}")
                expected = _record(service, standin.url, receiver.url + WEBHOOK_PATH)
                landed = _watch(config, expected)
            session_id = service.session_of(ROOM)
            manifest, _ = read_manifest(backend, session_id)
    if manifest is not None:
        print_manifest(manifest)
    click.echo(
        f"\narchive: {out_dir / 'archive'}\n"
        f"manifest: track-archive manifest show {session_id} --backend {out_dir / 'archive'}\n"
        f"next: point the real service's webhookUrl at `track-archive serve --public-key FILE`"
    )
    return EXIT_OK if landed == expected else EXIT_FAILED


def _record(service: RecordingService, api_base: str, webhook_url: str) -> int:
    """Start and stop each track; the number of segments the stand-in wrote."""
    with RecordingApi(service.token, api_base=api_base) as api:
        for participant, kind in TRACKS:
            api.start(
                StartRequest(
                    room_id=ROOM, participant_id=participant, kind=kind, webhook_url=webhook_url
                )
            )
            click.echo(f"started recording {participant}/{kind}")
        for participant, kind in TRACKS:
            api.stop(ROOM, participant, kind)
            click.echo(f"stopped recording {participant}/{kind}")
    return sum(len(r.files) for r in service.recordings)


def _watch(config: Config, expected: int) -> int:
    """Print each segment as the receiver's workers archive it; the count that landed."""
    seen: set[str] = set()
    deadline = time.monotonic() + DEADLINE
    journal = SQLiteJournal(config.state.journal)
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            for record in journal.segments(states=(SegmentState.DONE, SegmentState.FAILED)):
                if record.segment_id in seen:
                    continue
                seen.add(record.segment_id)
                stored = record.stored
                if stored is not None:
                    click.echo(f"archived {stored.key} ({stored.size:,} bytes)")
                else:
                    click.echo(f"FAILED {record.key}: {record.error}")
            time.sleep(0.1)
        done = len(journal.segments(states=(SegmentState.DONE,)))
    finally:
        journal.close()
    # Stopping the receiver merges the last outcomes into the manifest.
    return done
