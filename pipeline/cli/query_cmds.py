"""``track-archive sessions`` and ``segments``: questions asked of an archive's manifests.

They read the local query index only; nothing of the sync or download machinery loads.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from ..query import FORMATS, list_segments, list_sessions
from .common import backend_option, config_option, print_query, translate_errors

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class _DateOrTime(click.ParamType):
    """``2026-05-01`` (a whole day) or ``2026-05-01T09:30[:00][+02:00]`` (a moment, UTC if no zone)."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD) or an ISO date-time", param, ctx)


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people, json or csv for programs.",
)


@click.command(context_settings=CONTEXT_SETTINGS)
@backend_option
@click.option("--since", type=_DateOrTime(), default=None, help="Sessions started on or after.")
@click.option(
    "--until",
    type=_DateOrTime(),
    default=None,
    help="Sessions started before (a date: up to its end).",
)
@_format_option
@config_option
@translate_errors
def sessions(
    backend_url: str | None,
    since: date | None,
    until: date | None,
    fmt: str,
    config_path: Path | None,
) -> None:
    """One row per session: participants, segment counts, bytes, total duration, failures."""
    print_query(list_sessions, "sessions", fmt, config_path, backend_url, since=since, until=until)


@click.command(context_settings=CONTEXT_SETTINGS)
@backend_option
@click.option("--session", default=None, metavar="ID", help="Only this session.")
@click.option("--participant", default=None, metavar="ID", help="Only this participant.")
@click.option(
    "--kind",
    default=None,
    metavar="KIND",
    help="Only this kind (audio, video, screen_audio, screen_video).",
)
@_format_option
@config_option
@translate_errors
def segments(
    backend_url: str | None,
    session: str | None,
    participant: str | None,
    kind: str | None,
    fmt: str,
    config_path: Path | None,
) -> None:
    """One row per archived segment, in recording order."""
    print_query(
        list_segments,
        "segments",
        fmt,
        config_path,
        backend_url,
        session=session,
        participant=participant,
        kind=kind,
    )


commands = [sessions, segments]
