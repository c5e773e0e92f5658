"""``track-archive archive``: saved webhooks in, verified archive and manifests out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    ConfigProblem,
    allow_origin_option,
    backend_option,
    broker_option,
    config_option,
    json_option,
    load,
    open_configured_backend,
    setup_logging,
    state_option,
    translate_errors,
)

if TYPE_CHECKING:
    from ..archive import RunSummary
    from ..config import Config


def _via_broker(
    config: Config, sources: list[str], *, wait: bool, show_progress: bool
) -> RunSummary | None:
    """Queue (and wait for) the segments; ``None`` when not waiting (count printed)."""
    from ..queue.batch import BatchProgress, archive_via_broker
    from .progress import RunProgress

    progress = RunProgress(enabled=show_progress and wait)
    backend = open_configured_backend(config)
    try:
        summary, queued = archive_via_broker(
            config,
            backend,
            sources,
            wait=wait,
            progress=BatchProgress(begin=progress.start, step=progress.step),
        )
    finally:
        progress.stop()
        backend.close()
    if wait:
        return summary
    click.echo(f"queued {queued} segments")
    return None


@click.command("archive")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@config_option
@backend_option
@allow_origin_option
@state_option
@click.option("--concurrency", type=click.IntRange(min=1), help="Segments downloaded at once.")
@broker_option
@click.option(
    "--no-wait",
    is_flag=True,
    help="With --broker: queue the segments, print how many, and exit 0 without waiting.",
)
@json_option
@translate_errors
def archive(
    sources: tuple[str, ...],
    config_path: Path | None,
    backend_url: str | None,
    allow_origins: tuple[str, ...],
    state_path: Path | None,
    concurrency: int | None,
    broker_url: str | None,
    no_wait: bool,
    as_json: bool,
) -> None:
    """Archive every segment named by saved webhooks in SOURCE (files, directories or -).

    With --broker the segments are queued for `track-archive worker`
    processes and the command waits for them (same summary and exit codes).

    Exit status: 0 when every segment is archived and verified (or already
    was), 1 when any segment, input record or session manifest failed, 2 for usage or
    configuration errors.
    """
    if no_wait and not broker_url:
        raise ConfigProblem("--no-wait only applies with --broker (or $TRACK_ARCHIVE_BROKER)")
    config = load(
        config_path,
        **{
            "backend.url": backend_url,
            "download.allowed_origins": list(allow_origins) or None,
            "state.journal": str(state_path) if state_path else None,
            "download.concurrency": concurrency,
            "queue.broker": broker_url,
        },
    )
    setup_logging(config.log_level, quiet=as_json)
    show_progress = sys.stderr.isatty() and not as_json
    if broker_url:
        summary = _via_broker(config, list(sources), wait=not no_wait, show_progress=show_progress)
        if summary is None:
            return
    else:
        # The run's dependencies (PyAV, httpx) load when it starts, not with the CLI.
        from ..run import archive_sources
        from .progress import RunProgress

        summary = archive_sources(config, sources, progress=RunProgress(enabled=show_progress))
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2))
    else:
        from .report import print_summary

        print_summary(summary)
    failed = summary.failed or summary.input_errors or summary.manifest_failures
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


commands = [archive]
