"""The ``track-archive`` command line: a thin layer over the library."""

from __future__ import annotations

import importlib

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: Modules contributing commands, each exposing ``commands``; optional ones may be absent.
_COMMAND_MODULES = (
    "archive_cmd",
    "manifest_cmd",
    "demo_cmd",
    "serve_cmd",
    "recording_cmd",
    "sync_cmds",
)


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="track-archive")
def main() -> None:
    """Archive VideoSDK participant track recordings: verified, organised, never overwritten."""


def _register() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        for command in getattr(module, "commands", []):
            main.add_command(command)


_register()
