"""``track-archive sessions`` and ``segments``: questions asked of an archive's manifests.

They read the local query index only; nothing of the sync or download machinery loads.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from ..query import FORMATS, list_segments, list_sessions, render
from .common import (
    backend_option,
    config_option,
    load,
    open_configured_backend,
    query_index_path,
    translate_errors,
)

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
    config = load(config_path)
    with open_configured_backend(config, backend_url, clean_leftovers=False) as backend:
        rows = list_sessions(
            backend, since=since, until=until, index_path=query_index_path(config, backend.url)
        )
    render(rows, fmt, sys.stdout, kind="sessions")  # type: ignore[arg-type]  # click.Choice narrows fmt


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
    config = load(config_path)
    with open_configured_backend(config, backend_url, clean_leftovers=False) as backend:
        rows = list_segments(
            backend,
            session=session,
            participant=participant,
            kind=kind,
            index_path=query_index_path(config, backend.url),
        )
    render(rows, fmt, sys.stdout, kind="segments")  # type: ignore[arg-type]  # click.Choice narrows fmt


commands = [sessions, segments]
