"""Every command documents itself and answers -h as well as --help."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import COMMANDS, main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
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
        "worker",
    ):
        assert expected in names


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_every_command_has_help_text(path):
    result = CliRunner().invoke(main, [*path, "-h"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command: click.Command | None = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(click.Context(command), name)
    assert command is not None
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


def test_the_command_list_shows_each_commands_own_short_help():
    """The list printed without importing the commands says what each command says of itself."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.exception
    listing = result.output
    for name, entry in COMMANDS.items():
        command = main.get_command(click.Context(main), name)
        assert command is not None
        assert entry.short_help == command.get_short_help_str(limit=10_000), name
        assert name in listing


def test_every_command_a_module_declares_is_registered():
    """A command added to a module but not to the registry would be unreachable."""
    import importlib

    registered = {(entry.module, entry.attribute) for entry in COMMANDS.values()}
    for module_name in {entry.module for entry in COMMANDS.values()}:
        module = importlib.import_module(f"pipeline.cli.{module_name}")
        for command in module.commands:
            attribute = next(k for k, v in vars(module).items() if v is command)
            assert (module_name, attribute) in registered, f"{module_name}.{attribute}"


def test_the_command_line_loads_no_command_dependencies_until_a_command_runs():
    """``--help`` and the command list must not pay for PyAV, httpx, boto3 or the web stack."""
    probe = (
        "import sys; from click.testing import CliRunner; import pipeline.cli as cli; "
        "CliRunner().invoke(cli.main, ['--help']); "
        "print(' '.join(m for m in ('av', 'httpx', 'boto3', 'fastapi', 'uvicorn', "
        "'google.cloud.storage', 'pipeline.archive', 'pipeline.live') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


#: Commands whose own module needs no model at import: their --help loads neither pydantic
#: nor the configuration (read when the command runs).
HELP_WITHOUT_CONFIG = ("archive", "demo", "export", "manifest show", "serve", "worker")


@pytest.mark.parametrize("name", HELP_WITHOUT_CONFIG)
def test_a_commands_help_loads_no_configuration_or_pydantic(name):
    probe = (
        "import sys; from click.testing import CliRunner; import pipeline.cli as cli; "
        f"result = CliRunner().invoke(cli.main, {[*name.split(), '--help']!r}); "
        "print(result.exit_code, ' '.join(m for m in ('pydantic', 'pipeline.config') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["0"], out


#: What no command that only reads the archive (or refuses its configuration) should load.
DOWNLOAD_AND_WEB = ("av", "httpx", "boto3", "google.cloud.storage", "uvicorn", "starlette")
#: The config file's ``download`` section is the download policy: these light modules are config.
DOWNLOAD_CONFIG = ("pipeline.download", "pipeline.download.policy", "pipeline.download.origins")
READ_ONLY = {
    "manifest show (absent)": (["manifest", "show", "s1", "--backend", "archive"], 1),
    "sessions": (["sessions", "--backend", "archive", "--format", "json"], 0),
    "segments": (["segments", "--backend", "archive", "--format", "csv"], 0),
    "sync --dry-run": (["sync", "archive", "copy", "--dry-run"], 0),
    "serve without a key": (["serve", "--backend", "archive", "--state", "j.sqlite3"], 2),
}


@pytest.mark.parametrize("name", sorted(READ_ONLY))
def test_commands_that_download_nothing_load_no_downloader_or_web_stack(tmp_path, name):
    """Each command imports what it needs when it runs: reading an archive starts at once."""
    args, exit_code = READ_ONLY[name]
    (tmp_path / "archive").mkdir()
    (tmp_path / "copy").mkdir()
    probe = (
        "import sys; from click.testing import CliRunner; import pipeline.cli as cli; "
        f"result = CliRunner().invoke(cli.main, {args!r}); "
        "print(result.exit_code, ' '.join(m for m in sys.modules "
        f"if m in {DOWNLOAD_AND_WEB!r} or (m.startswith(('pipeline.archive', 'pipeline.download')) "
        f"and m not in {DOWNLOAD_CONFIG!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == [str(exit_code)], out


def test_an_archive_run_with_nothing_to_fetch_loads_no_download_engine(tmp_path):
    """The engine (httpx, PyAV) loads with the first download: an empty batch starts at once."""
    (tmp_path / "archive").mkdir()
    (tmp_path / "webhooks.jsonl").write_text("", encoding="utf-8")
    args = ["archive", "webhooks.jsonl", "--backend", "archive", "--state", "j.sqlite3", "--json"]
    probe = (
        "import sys; from click.testing import CliRunner; import pipeline.cli as cli; "
        f"result = CliRunner().invoke(cli.main, {args!r}); "
        "print(result.exit_code, ' '.join(m for m in sys.modules "
        f"if m in {DOWNLOAD_AND_WEB!r} or m == 'pipeline.download.engine'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == ["0"], out


#: Commands that answer from the query index or one manifest, and what each must leave alone:
#: the sync engine, rich (nothing to draw in JSON, CSV or an error line), the YAML parser (no
#: config file here), the webhook models (a manifest's merge rules need only the stages), the
#: validators of manifests, which are built when the first one is read, not at import, and
#: those of the config sections (``--backend`` is opened as given: no section is named here).
QUERIES = {
    "sessions --format json": ["sessions", "--backend", "archive", "--format", "json"],
    "segments --format csv": ["segments", "--backend", "archive", "--format", "csv"],
    "exports --format json": ["exports", "--backend", "archive", "--format", "json"],
    "manifest show (absent)": ["manifest", "show", "s1", "--backend", "archive"],
    "export (missing session)": ["export", "s1", "--backend", "archive"],
}
UNUSED_BY_QUERIES = (
    "pipeline.sync",
    "pipeline.sync.run",
    "rich",
    "rich.console",
    "yaml",
    "pipeline.events",
    "pipeline.jsontext",
    # Loaded with the first validator pydantic builds (it imports importlib.metadata).
    "pydantic.plugin._loader",
)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_load_no_sync_engine_or_rich_and_build_no_unread_model(tmp_path, name):
    (tmp_path / "archive").mkdir()
    probe = (
        "import sys; from click.testing import CliRunner; import pipeline.cli as cli; "
        f"CliRunner().invoke(cli.main, {QUERIES[name]!r}); "
        f"loaded = [n for n in {UNUSED_BY_QUERIES!r} if n in sys.modules]; "
        "import pipeline.events as e, pipeline.manifest.model as m, pipeline.config as c; "
        "models = [e.FileDetail, e.TrackData, e.TrackEvent, e.OtherEvent, m.Manifest, m.Segment, "
        "c.Config, c.BackendSection, c.StateSection, c.ServeSection, c.QueueSection, "
        "c.VideoSDKSection]; "
        "print(' '.join(loaded), ' '.join(c.__name__ for c in models if c.__pydantic_complete__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == [], out


def test_the_live_package_still_offers_every_name_it_lists():
    # Its names load on first use (see pipeline.live): each listed one must resolve.
    import pipeline.live as live

    assert all(getattr(live, name) is not None for name in live.__all__)
    with pytest.raises(AttributeError):
        _ = live.no_such_name  # type: ignore[attr-defined]
