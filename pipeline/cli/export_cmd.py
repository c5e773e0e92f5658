"""``track-archive export``: a session's segments as playable, aligned files.

PyAV and the export writers load only when the command runs, so other commands
start without them.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import (
    EXIT_FAILED,
    ConfigProblem,
    backend_option,
    config_option,
    load,
    open_configured_backend,
    print_query,
    setup_logging,
    translate_errors,
)

if TYPE_CHECKING:
    from ..export import ExportReport

_KINDS = ("audio", "video", "screen_audio", "screen_video")


class _Bar:
    """Seconds of timeline written, on the command line's progress bar (terminals only)."""

    def __init__(self) -> None:
        from .progress import Bar

        self._bar = Bar()
        self._task = self._bar.counter("exporting", None, _seconds)

    def begin(self, total_seconds: float) -> None:
        self._bar.set_total(self._task, max(total_seconds, 0.001))
        self._bar.start()

    def advance(self, seconds: float) -> None:
        self._bar.advance(self._task, seconds)

    def stop(self) -> None:
        self._bar.stop()


def _seconds(done: float, total: float | None) -> str:
    return f"{done:.0f}/{total or 0:.0f} s of media"


def _print(report: ExportReport) -> None:
    for exported in report.files:
        who = exported.participant_id or "(all participants)"
        click.echo(
            f"{exported.status:9} {who} {exported.pair}: {exported.url} "
            f"({exported.duration:.1f} s from {exported.start:.1f} s)"
        )
    for failure in report.failures:
        who = failure.participant_id or "(all participants)"
        click.echo(f"failed    {who} {failure.pair}: {failure.reason}", err=True)
    if not report.files and not report.failures:
        click.echo("nothing to export: no audio or video segments match")


@click.command("export")
@click.argument("session_id")
@config_option
@backend_option
@click.option("--participant", "participants", multiple=True, metavar="ID", help="Export only this participant (repeatable).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(_KINDS), help="Use only segments of this kind (repeatable).")
@click.option("--mode", type=click.Choice(("copy", "normalize")), default="copy", show_default=True,
              help="copy: remux without re-encoding; normalize: constant frame rate, one resolution, gaps filled, from time zero.")
@click.option("--format", "fmt", type=click.Choice(("mkv", "webm", "mp4")), default=None,
              help="Container (default: mkv for copy, mp4 for normalize).")
@click.option("--out", metavar="DIR_OR_URL", default=None,
              help="Write here (a directory or backend URL) instead of the session's exports folder.")
@click.option("--mix", is_flag=True, help="Also write one audio file of every participant mixed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document of what was written.")
@translate_errors
def export(
    session_id: str,
    config_path: Path | None,
    backend_url: str | None,
    participants: tuple[str, ...],
    kinds: tuple[str, ...],
    mode: str,
    fmt: str | None,
    out: str | None,
    mix: bool,
    as_json: bool,
) -> None:
    """Export SESSION_ID: one aligned, seekable file per participant's camera and screen.

    Reads only the segments the manifest lists and checks each one's SHA-256.
    Exports whose inputs have not changed are left as they are.
    """
    from ..export import ExportRequest, ExportUsageError, SessionNotFound, export_session

    # --backend is opened as given, not validated into the config (no section to build).
    config = load(config_path)
    setup_logging(config.log_level, quiet=as_json)
    request = ExportRequest(mode=mode, format=fmt, participants=participants, kinds=kinds, mix=mix)
    bar = _Bar() if sys.stderr.isatty() and not as_json else None
    with ExitStack() as stack:
        backend = stack.enter_context(open_configured_backend(config, backend_url))
        dest = stack.enter_context(open_configured_backend(config, out)) if out else None
        try:
            report = export_session(backend, session_id, request, out=dest, progress=bar)
        except ExportUsageError as exc:
            raise ConfigProblem(str(exc)) from None
        except SessionNotFound as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            if bar is not None:
                bar.stop()
    if as_json:
        click.echo(json.dumps(report.to_record(), indent=2))
    else:
        _print(report)
    if not report.ok:
        sys.exit(EXIT_FAILED)


@click.command("exports")
@backend_option
@click.option("--session", default=None, metavar="ID", help="Only this session.")
@click.option("--participant", default=None, metavar="ID", help="Only this participant's exports.")
@click.option("--format", "fmt", type=click.Choice(("table", "json", "csv")), default="table",
              show_default=True, help="table for people, json or csv for programs.")
@config_option
@translate_errors
def exports(
    backend_url: str | None,
    session: str | None,
    participant: str | None,
    fmt: str,
    config_path: Path | None,
) -> None:
    """One row per export listed in the archive's manifests."""
    from ..query import list_exports

    print_query(
        list_exports, "exports", fmt, config_path, backend_url, session=session, participant=participant
    )


commands = [export, exports]
