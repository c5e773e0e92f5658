"""The ``track-archive`` command line: a thin layer over the library.

Each module builds library objects, calls one function, and turns the
library's errors into clear messages and exit codes (see ``common``).

Commands are registered by name and imported only when invoked: ``--help`` and
every command start without loading PyAV, httpx, boto3 or the web stack that
other commands need. Their short help lives in the registry so that the
command list prints without importing them; a test keeps both in step.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NamedTuple

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: pydantic looks for plugins in the entry points of every installed distribution the first
#: time it builds a model: a scan that costs every command about as much as building its whole
#: configuration, for plugins the tool never uses. Set the variable yourself (empty: load
#: them all) to have pydantic's plugins loaded anyway.
PYDANTIC_PLUGINS_ENV = "PYDANTIC_DISABLE_PLUGINS"


def _skip_work_no_command_uses() -> None:
    """Process-wide choices of the command line (never of the library) that only save time."""
    os.environ.setdefault(PYDANTIC_PLUGINS_ENV, "__all__")
    # httpx imports its own command line (rich's console, progress and syntax, pygments' lexers)
    # whenever those are installed, and rich is one of ours: about a third of httpx's import
    # time, paid by every command that downloads. No command runs httpx's command line; with
    # this entry the import fails and httpx keeps its stand-in ``httpx.main``.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None blocks an import


class Entry(NamedTuple):
    """Where a command lives and the one line ``--help`` shows for it."""

    module: str
    attribute: str
    short_help: str


#: Every top-level command: name -> (module under pipeline.cli, attribute, short help).
COMMANDS: dict[str, Entry] = {
    "archive": Entry(
        "archive_cmd",
        "archive",
        "Archive every segment named by saved webhooks in SOURCE (files, directories or -).",
    ),
    "demo": Entry(
        "demo_cmd",
        "demo",
        "Archive a made-up meeting served by a local stand-in of the recording service.",
    ),
    "export": Entry(
        "export_cmd",
        "export",
        "Export SESSION_ID: one aligned, seekable file per participant's camera and screen.",
    ),
    "exports": Entry("export_cmd", "exports", "One row per export listed in the archive's manifests."),
    "manifest": Entry("manifest_cmd", "manifest", "Read session manifests."),
    "public-key": Entry(
        "serve_cmd", "public_key_group", "The recording service's webhook signing key."
    ),
    "reconcile": Entry(
        "recording_cmd",
        "reconcile",
        "Archive every listed recording the archive lacks, and check listed sizes.",
    ),
    "recording": Entry(
        "recording_cmd",
        "recording",
        "Start and stop participant track recordings through the recording service's API.",
    ),
    "segments": Entry("query_cmds", "segments", "One row per archived segment, in recording order."),
    "serve": Entry(
        "serve_cmd",
        "serve",
        "Receive the recording service's webhooks and archive every stopped track.",
    ),
    "sessions": Entry(
        "query_cmds",
        "sessions",
        "One row per session: participants, segment counts, bytes, total duration, failures.",
    ),
    "sync": Entry(
        "sync_cmds",
        "sync",
        "Copy the archive at SRC_URL to DST_URL: only what is missing, verified end to end.",
    ),
    "worker": Entry(
        "worker_cmd",
        "worker",
        "Archive segments queued on the broker by serve --broker and archive --broker.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported the first time they are asked for."""

    def __init__(self, *args: object, registry: dict[str, Entry], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # click's own keyword set
        self.registry = registry

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.registry, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self.registry.get(cmd_name)
        if entry is None:
            return None
        _skip_work_no_command_uses()
        module = importlib.import_module(f"{__name__}.{entry.module}")
        command: click.Command = getattr(module, entry.attribute)
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every command from the registry, importing none of them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            # A stand-in command shortens the registered line exactly as click would the real one.
            command = self.commands.get(name) or click.Command(
                name, help=self.registry[name].short_help
            )
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, registry=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="track-archive")
def main() -> None:
    """Archive VideoSDK participant track recordings: verified, organised, never overwritten."""
