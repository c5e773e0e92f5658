"""``track-archive demo``: the whole job end to end on this machine, no network, no credentials."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .common import EXIT_FAILED, EXIT_OK, setup_logging, translate_errors

DEMO_PORT = 47470


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("track-archive-demo"),
    show_default=True,
    help="Where the demo writes its recordings, webhooks, archive and journal.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Live mode: start/stop recordings through the API and archive them as signed webhooks arrive.",
)
@translate_errors
def demo(out_dir: Path, live: bool) -> None:
    """Archive a made-up meeting served by a local stand-in of the recording service.

    The stand-in generates real WebM segments for a few participants (some
    tracks restarted, so several segments), serves them over HTTP on
    127.0.0.1, and emits its webhooks, one of them twice and one track
    failing. They go through the same pipeline as ``archive`` into
    OUT/archive; running the demo again archives nothing new.
    """
    if live:
        from .live_demo import run_live_demo

        sys.exit(run_live_demo(out_dir))
    from ..config import Config
    from ..manifest import read_manifest
    from ..run import archive_sources, open_configured_backend
    from ..standin import (
        StandInServer,
        build_app,
        generate_meeting,
        stopped_webhooks,
        track_webhook,
    )
    from .progress import RunProgress
    from .report import print_manifest, print_summary

    out_dir = out_dir.resolve()
    source_root = out_dir / "service"
    meeting = generate_meeting(source_root)
    # A fixed port keeps the files' URLs, and so the journal's jobs, the same across runs.
    with StandInServer(build_app(source_root), port=DEMO_PORT) as server:
        bodies = stopped_webhooks(meeting, server.url)
        bodies.append(bodies[-1])  # the service may deliver a webhook twice
        bodies.append(track_webhook(meeting, "dave", "video", "failed"))
        webhooks = out_dir / "webhooks.jsonl"
        webhooks.write_text("".join(json.dumps(b) + "\n" for b in bodies), encoding="utf-8")
        config = Config().override(
            **{
                "backend.url": str(out_dir / "archive"),
                "download.allowed_origins": [server.url],
                "state.journal": str(out_dir / "state" / "journal.sqlite3"),
            }
        )
        setup_logging("warning")
        click.echo(
            f"stand-in recording service on {server.url}; {len(meeting.segments)} segments, webhooks in {webhooks}"
        )
        summary = archive_sources(
            config, [str(webhooks)], progress=RunProgress(enabled=sys.stderr.isatty())
        )
    print_summary(summary)
    with open_configured_backend(config) as backend:
        manifest, _ = read_manifest(backend, meeting.session_id)
    if manifest is not None:
        print_manifest(manifest)
    click.echo(
        f"\narchive: {out_dir / 'archive'}\nmanifest: track-archive manifest show {meeting.session_id} --backend {out_dir / 'archive'}"
    )
    sys.exit(EXIT_FAILED if summary.failed or summary.input_errors else EXIT_OK)


commands = [demo]
