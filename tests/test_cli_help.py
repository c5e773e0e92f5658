"""Every command documents itself and answers -h as well as --help."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
    return found


ALL = _commands(main)


def test_the_documented_commands_exist():
    names = {" ".join(path) for path in ALL}
    for expected in (
        "archive",
        "manifest show",
        "demo",
        "serve",
        "recording start",
        "recording stop",
        "reconcile",
        "sync",
        "sessions",
        "segments",
    ):
        assert expected in names


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_every_command_has_help_text(path):
    result = CliRunner().invoke(main, [*path, "-h"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help and len(command.help.strip()) > 20


def test_usage_errors_exit_2_with_a_message():
    result = CliRunner().invoke(main, ["archive"])
    assert result.exit_code == 2 and "SOURCE" in result.output


def test_a_bad_config_file_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("download:\n  concurrenc: 2\n")
    result = CliRunner().invoke(main, ["archive", "--config", str(config), str(tmp_path)])
    assert result.exit_code == 2
    assert "download.concurrenc: unknown key" in result.output
    assert "Traceback" not in result.output
