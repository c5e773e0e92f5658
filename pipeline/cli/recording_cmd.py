"""``track-archive recording start|stop`` and ``track-archive reconcile``."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..events import KINDS
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    TOKEN_ENV,
    ConfigProblem,
    allow_origin_option,
    api_base_option,
    backend_option,
    config_option,
    json_option,
    load,
    setup_logging,
    state_option,
    token_option,
    translate_errors,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..live.reconcile import ReconcileSummary
    from ..live.recording_api import RecordingApi


def _api(config: Config, api_base: str | None, token: str | None) -> RecordingApi:
    """A client for the service with the token given or configured; checked before any call."""
    from ..live.recording_api import RecordingApi, check_api_base

    # An empty $VIDEOSDK_TOKEN counts as unset, so the config's token still applies.
    config = config.override(**{"videosdk.api_base": api_base, "videosdk.token": token or None})
    if not config.videosdk.token:
        raise ConfigProblem(f"no API token: set {TOKEN_ENV} or videosdk.token in the config")
    with _usage():
        return RecordingApi(
            config.videosdk.token, api_base=check_api_base(config.videosdk.api_base)
        )


@contextlib.contextmanager
def _usage() -> Iterator[None]:
    """Arguments the service would refuse are usage errors (exit 2), caught before any request."""
    from ..live.errors import ApiArgumentError

    try:
        yield
    except ApiArgumentError as exc:
        raise ConfigProblem(str(exc)) from None


def _track_options(func: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        (
            click.option("--room", "room", required=True, help="The room (meeting) id."),
            click.option("--participant", "participant", required=True, help="The participant id."),
            click.option("--kind", required=True, type=click.Choice(KINDS), help="The track kind."),
        )
    ):
        func = option(func)
    return func


@click.group("recording")
def recording() -> None:
    """Start and stop participant track recordings through the recording service's API."""


@recording.command("start")
@_track_options
@click.option(
    "--file-format", default="webm", show_default=True, help="Recording format (only webm)."
)
@click.option(
    "--webhook-url", metavar="URL", help="Where the service sends this recording's webhooks."
)
@click.option(
    "--bucket-dir-path", metavar="PATH", help="Directory in your own storage, if configured."
)
@config_option
@api_base_option
@token_option
@translate_errors
def start(
    room: str,
    participant: str,
    kind: str,
    file_format: str,
    webhook_url: str | None,
    bucket_dir_path: str | None,
    config_path: Path | None,
    api_base: str | None,
    token: str | None,
) -> None:
    """Start recording one participant's track (POST /v2/recordings/participant/track/start)."""
    from ..live.recording_api import StartRequest

    config = load(config_path)
    with _usage():
        request = StartRequest(
            room_id=room,
            participant_id=participant,
            kind=kind,
            file_format=file_format,
            webhook_url=webhook_url,
            bucket_dir_path=bucket_dir_path,
        )
    with _api(config, api_base, token) as api:
        answer = api.start(request)
    click.echo(json.dumps(answer, indent=2))


@recording.command("stop")
@_track_options
@config_option
@api_base_option
@token_option
@translate_errors
def stop(
    room: str,
    participant: str,
    kind: str,
    config_path: Path | None,
    api_base: str | None,
    token: str | None,
) -> None:
    """Stop recording one participant's track (POST /v2/recordings/participant/track/stop)."""
    from ..live.recording_api import check_kind

    config = load(config_path)
    with _usage():
        check_kind(kind)
    with _api(config, api_base, token) as api:
        answer = api.stop(room, participant, kind)
    click.echo(json.dumps(answer, indent=2))


def _print(summary: ReconcileSummary) -> None:
    from .report import print_summary

    click.echo(
        f"listed {summary.listed} files: {summary.present} already archived, "
        f"{summary.queued} queued"
    )
    print_summary(summary.run)
    for item in summary.size_mismatches:
        click.echo(
            f"size mismatch {item['key']}: listed {item['listedSize']} bytes, "
            f"archived {item['archivedSize']}"
        )
    for item in summary.duration_notes:
        click.echo(
            f"note {item['key']}: listed duration {item['listed']} matches the measured "
            f"{item['measuredSeconds']} s neither in seconds nor in milliseconds"
        )


@click.command("reconcile")
@click.option("--room", help="Reconcile every session of this room (the listing API needs it).")
@click.option(
    "--session",
    help="Reconcile only this session; its room comes from --room, else from its manifest.",
)
@config_option
@backend_option
@api_base_option
@token_option
@allow_origin_option
@state_option
@json_option
@translate_errors
def reconcile(
    room: str | None,
    session: str | None,
    config_path: Path | None,
    backend_url: str | None,
    api_base: str | None,
    token: str | None,
    allow_origins: tuple[str, ...],
    state_path: Path | None,
    as_json: bool,
) -> None:
    """Archive every listed recording the archive lacks, and check listed sizes.

    Pages through GET /v2/recordings/participant/track for the room, or for
    one session of it (with --session alone, the room is the session's
    meetingId from its manifest or the journal). A file whose size differs
    from the listed one is refused before it is stored. Safe to run again:
    files already archived are not fetched.
    Exit status: 0 when everything listed is archived with its listed size,
    1 otherwise, 2 for usage or configuration errors.
    """
    if not room and not session:
        raise ConfigProblem("give --room, --session, or both")
    config = load(
        config_path,
        **{
            "backend.url": backend_url,
            "download.allowed_origins": list(allow_origins) or None,
            "state.journal": str(state_path) if state_path else None,
        },
    )
    setup_logging(config.log_level, quiet=as_json)
    from ..run import reconcile_listing

    with _api(config, api_base, token) as api, _usage():
        summary = reconcile_listing(config, api, room=room, session=session)
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2))
    else:
        _print(summary)
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILED)


commands = [recording, reconcile]
