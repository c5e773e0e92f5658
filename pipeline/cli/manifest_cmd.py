"""``track-archive manifest show``: read one session's manifest."""

from __future__ import annotations

import click

from .common import (
    Failed,
    backend_option,
    config_option,
    load,
    open_configured_backend,
    translate_errors,
)


@click.group("manifest")
def manifest() -> None:
    """Read session manifests."""


@manifest.command("show")
@click.argument("session_id")
@config_option
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest document as stored.")
@translate_errors
def show(session_id: str, config_path: object, backend_url: str | None, as_json: bool) -> None:
    """Show the manifest of SESSION_ID: participants, kinds, segments, failures."""
    from ..manifest import read_manifest

    # --backend is opened as given, not validated into the config: a read names no section, so
    # no validator is built.
    config = load(config_path)  # type: ignore[arg-type]  # click passes Path | None
    with open_configured_backend(config, backend_url, clean_leftovers=False) as backend:
        found, _ = read_manifest(backend, session_id)
        if found is None:
            raise Failed(f"no manifest for session {session_id!r} in {backend.url}")
        if as_json:
            click.echo(found.to_json().decode("utf-8"), nl=False)
        else:
            from .report import print_manifest  # rich: only when there is a table to print

            print_manifest(found)


commands = [manifest]
