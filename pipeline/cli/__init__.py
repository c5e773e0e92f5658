"""The ``track-archive`` command line: a thin layer over the library.

Each module builds library objects, calls one function, and turns the
library's errors into clear messages and exit codes (see ``common``).
"""

from __future__ import annotations

import click

from . import archive_cmd, demo_cmd, manifest_cmd, recording_cmd, serve_cmd, sync_cmds

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="track-archive")
def main() -> None:
    """Archive VideoSDK participant track recordings: verified, organised, never overwritten."""


for _module in (archive_cmd, manifest_cmd, demo_cmd, serve_cmd, recording_cmd, sync_cmds):
    for _command in _module.commands:
        main.add_command(_command)
