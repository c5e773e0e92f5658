"""The live-mode commands: help everywhere, and serve's refusal to run unverified by accident."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

COMMANDS = [
    ["serve"],
    ["public-key"],
    ["public-key", "fetch"],
    ["recording"],
    ["recording", "start"],
    ["recording", "stop"],
    ["reconcile"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "-h"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_demo_offers_live_mode() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert "--live" in result.output


def test_serve_refuses_to_start_without_a_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "refusing to start without the service's public key" in result.output
    assert "--no-verify" in result.output


def test_serve_refuses_a_file_that_is_not_a_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    bogus = tmp_path / "key.pem"
    bogus.write_text("hello")
    result = CliRunner().invoke(main, ["serve", "--public-key", str(bogus)])
    assert result.exit_code == 2
    assert "not a readable public key" in result.output


def test_live_demo_lands_every_segment(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--live", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert result.output.count("archived ") == 6
    manifests = list((tmp_path / "demo" / "archive").glob("*/manifest.json"))
    assert len(manifests) == 1
    assert '"segmentCount": 6' in manifests[0].read_text()
