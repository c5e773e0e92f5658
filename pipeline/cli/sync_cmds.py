"""``track-archive sync``: copying an archive to another root, verified end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storage_backends import Backend

from ..config import Config
from ..errors import UnsafeIdentifier
from ..layout import session_prefix
from ..sync import (
    DEFAULT_CONCURRENCY,
    Copier,
    Outcome,
    SyncItem,
    SyncOptions,
    SyncProgress,
    SyncReport,
)
from ..sync import sync as run_sync
from ..sync.plan import session_of
from .common import (
    EXIT_FAILED,
    broker_option,
    config_option,
    load,
    open_configured_backend,
    translate_errors,
)
from .progress import Bar, sized

if TYPE_CHECKING:
    from rich.progress import TaskID

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class _Bar(SyncProgress):
    """Objects and bytes copied, on the command line's progress bar (terminals only)."""

    def __init__(self) -> None:
        self._bar = Bar()
        self._items: TaskID | None = None
        self._bytes: TaskID | None = None

    def planned(self, items: int, total_bytes: int) -> None:
        self._items = self._bar.counter("objects", items)
        self._bytes = self._bar.counter("bytes", total_bytes, sized)
        self._bar.start()

    def advance(self, item: SyncItem) -> None:
        if self._items is None or self._bytes is None:
            return
        self._bar.advance(self._items)
        if item.outcome is Outcome.COPIED:
            self._bar.advance(self._bytes, item.size)

    def stop(self) -> None:
        self._bar.stop()


def _print_report(report: SyncReport) -> None:
    verb = "would be " if report.dry_run else ""
    for item in report.items:
        quiet = item.outcome is Outcome.SKIPPED or (
            item.outcome is Outcome.KEPT and not report.dry_run
        )
        if not quiet:
            note = f" ({item.reason})" if item.reason else ""
            click.echo(f"{item.outcome.value:9} {item.key}{note}")
    totals = report.summary()
    click.echo(
        f"{'dry run: ' if report.dry_run else ''}{totals['copied']} {verb}copied, "
        f"{totals['skipped']} unchanged, {totals['conflicts']} conflicts, "
        f"{totals['deleted']} {verb}deleted, {totals['failed']} failed, {totals['bytes']} bytes"
    )


def _absent_sessions(report: SyncReport, sessions: tuple[str, ...]) -> list[str]:
    """The ``--session`` IDs that matched no object on either side."""
    seen = {session_of(item.key) for item in report.items}
    return [s for s in sessions if session_prefix(s).removesuffix("/") not in seen]


def _check_sessions(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for session_id in value:
        try:
            session_prefix(session_id)
        except UnsafeIdentifier as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("src_url")
@click.argument("dst_url")
@click.option("--dry-run", is_flag=True, help="List what would happen; change nothing.")
@click.option(
    "--session",
    "sessions",
    multiple=True,
    metavar="ID",
    callback=_check_sessions,
    help="Only this session (repeatable).",
)
@click.option("--delete", is_flag=True, help="Delete destination objects the source lacks.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace destination objects whose content differs (default: report a conflict).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary on stdout.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help=(
        "Copies in flight at once (between two local roots, at most one per CPU; "
        "with --broker, this sync's copies queued or running on the workers)."
    ),
)
@broker_option
@config_option
@translate_errors
def sync(
    src_url: str,
    dst_url: str,
    dry_run: bool,
    sessions: tuple[str, ...],
    delete: bool,
    overwrite: bool,
    as_json: bool,
    concurrency: int,
    broker_url: str | None,
    config_path: Path | None,
) -> None:
    """Copy the archive at SRC_URL to DST_URL: only what is missing, verified end to end.

    With --broker the segment copies run on `track-archive worker` processes
    started with --allow-root for both roots; manifests are still written here, last.

    Exit 0 when the destination holds all of the source's content, 1 when any
    copy failed or a conflict was left alone, 2 for usage or configuration errors.
    """
    config = load(config_path, **{"queue.broker": broker_url})
    options = SyncOptions(
        dry_run=dry_run,
        sessions=sessions,
        delete=delete,
        overwrite=overwrite,
        concurrency=concurrency,
        temp_dir=_staging(config),
    )
    bar = _Bar() if sys.stderr.isatty() and not as_json else None
    source = open_configured_backend(config, src_url, clean_leftovers=False)
    try:
        dest = open_configured_backend(config, dst_url)
        try:
            copier = _copier(broker_url, config, source, dest, concurrency)
            report = run_sync(source, dest, options, bar, copier)
        finally:
            if bar is not None:
                bar.stop()
            dest.close()
    finally:
        source.close()
    for session_id in _absent_sessions(report, sessions):
        # A filter that matches nothing is not an error, but a mistyped ID must not pass in silence.
        click.echo(
            f"warning: no session {session_id!r} in {src_url}: nothing to copy for it", err=True
        )
    if as_json:
        document: dict[str, Any] = report.summary()
        document["dryRun"] = report.dry_run
        document["items"] = [
            i.to_dict() for i in report.items if i.outcome not in (Outcome.SKIPPED, Outcome.KEPT)
        ]
        click.echo(json.dumps(document, indent=2))
    else:
        _print_report(report)
    if not report.ok:
        sys.exit(EXIT_FAILED)


def _copier(
    broker_url: str | None, config: Config, source: Backend, dest: Backend, concurrency: int
) -> Copier | None:
    """With --broker, the copies go to the workers, ``concurrency`` at a time; else ``None``."""
    if not broker_url:
        return None
    from ..queue.app import BrokerSettings, make_app
    from ..queue.copying import BrokerCopier
    from ..queue.idle import report_idle

    app = make_app(BrokerSettings.from_config(config))
    idle = config.queue.idle_warning
    start = f"track-archive worker --broker URL --allow-root {source.url} --allow-root {dest.url}"
    return BrokerCopier(
        app,
        source,
        dest,
        in_flight=concurrency,
        idle_after=idle,
        on_idle=lambda remaining: report_idle(app, idle, remaining, what="copy", start=start),
    )


def _staging(config: Config) -> Path | None:
    """Streamed copies are staged beside the other working files."""
    staging = config.state.staging_dir
    try:
        staging.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # fall back to the system temp directory
    return staging


commands = [sync]
