"""What every command shares: options, config loading, backends, logging, errors."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from storage_backends import BackendConfigError, StorageError

from ..errors import ConfigError, TrackArchiveError

# Commands open what the library opens; re-exported here for them.
from ..run import open_configured_backend as open_configured_backend

if TYPE_CHECKING:  # pydantic and the config's models load when a command reads its config,
    from ..config import Config  # so that every command's --help starts without them

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variables read by the options of the same name.
API_BASE_ENV, TOKEN_ENV = "VIDEOSDK_API_BASE", "VIDEOSDK_TOKEN"

#: Exit codes shared by every command.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ConfigProblem(click.ClickException):
    """A configuration or usage problem: exit code 2."""

    exit_code = EXIT_USAGE


class Failed(click.ClickException):
    """The job ran and something in it failed: exit code 1."""

    exit_code = EXIT_FAILED


def config_option(func: F) -> F:
    """``--config FILE``: defaults to ./config.yaml when present."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Configuration file (default: ./config.yaml when present).",
    )(func)


def backend_option(func: F) -> F:
    """``--backend URL``: overrides backend.url."""
    return click.option(
        "--backend",
        "backend_url",
        metavar="URL",
        default=None,
        help="Archive root: a path, file:///abs/dir, s3://bucket[/prefix] or gs://bucket[/prefix].",
    )(func)


def allow_origin_option(func: F) -> F:
    """``--allow-origin ORIGIN`` (repeatable): replaces download.allowed_origins."""
    return click.option(
        "--allow-origin",
        "allow_origins",
        multiple=True,
        metavar="ORIGIN",
        help="Trust this origin for fileUrls (repeatable); replaces the configured list.",
    )(func)


#: Where ``--broker`` is read from when the option is not given.
BROKER_ENV = "TRACK_ARCHIVE_BROKER"


def broker_option(func: F) -> F:
    """``--broker URL`` (or ``$TRACK_ARCHIVE_BROKER``): overrides queue.broker."""
    return click.option(
        "--broker",
        "broker_url",
        metavar="URL",
        envvar=BROKER_ENV,
        default=None,
        help=f"Celery broker: redis://host:6379/0 or amqp://user:pass@host:5672// (default: ${BROKER_ENV}, then queue.broker).",
    )(func)


def state_option(func: F) -> F:
    """``--state PATH``: the journal file."""
    return click.option(
        "--state",
        "state_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The journal file (default from config: .track-archive/journal.sqlite3).",
    )(func)


def json_option(func: F) -> F:
    """``--json``: one JSON summary document on stdout."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON summary document on stdout."
    )(func)


def api_base_option(func: F) -> F:
    """``--api-base URL`` (or ``$VIDEOSDK_API_BASE``): overrides videosdk.api_base."""
    return click.option(
        "--api-base",
        metavar="URL",
        envvar=API_BASE_ENV,
        default=None,
        help=f"Recording service base URL (default: ${API_BASE_ENV}, then videosdk.api_base).",
    )(func)


def token_option(func: F) -> F:
    """``--token TOKEN`` (or ``$VIDEOSDK_TOKEN``): overrides videosdk.token."""
    return click.option(
        "--token",
        metavar="TOKEN",
        envvar=TOKEN_ENV,
        default=None,
        show_envvar=False,
        help=f"API token (default: ${TOKEN_ENV}, then videosdk.token; prefer the variable).",
    )(func)


def load(config_path: Path | None, **overrides: Any) -> Config:
    """Load the config once and apply command-line overrides (exit 2 when invalid)."""
    from ..config import load_config

    try:
        return load_config(config_path, **overrides)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def query_index_path(config: Config, url: str) -> Path:
    """The query index of one backend URL: one file per backend, beside the journal."""
    from ..query import index_path_for

    return index_path_for(config.state.journal.parent / "index", url)


def print_query(
    lister: Callable[..., Sequence[Any]],
    table: Literal["sessions", "segments", "exports"],
    fmt: str,
    config_path: Path | None,
    backend_url: str | None,
    **filters: Any,
) -> None:
    """Ask an archive's manifests one question through its local query index; print the rows.

    The listing commands differ only in ``lister``, its filters and the ``table`` drawn; a read-only
    question never cleans the root's leftovers.
    """
    from ..query import render

    config = load(config_path)
    setup_logging(config.log_level)  # a manifest the index cannot read is named on stderr
    with open_configured_backend(config, backend_url, clean_leftovers=False) as backend:
        rows = lister(backend, index_path=query_index_path(config, backend.url), **filters)
    render(rows, fmt, sys.stdout, kind=table)  # type: ignore[arg-type]  # click.Choice narrows fmt


def setup_logging(level: str, *, quiet: bool = False) -> None:
    """Log lines to stderr: rich on a terminal, plain in pipes and CI."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else getattr(logging, level.upper()))
    # The SDKs are chatty at INFO and may echo request details; keep them at WARNING.
    for noisy in ("botocore", "boto3", "urllib3", "google", "httpx", "httpcore", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def translate_errors(func: F) -> F:
    """Turn the library's errors into clear messages and exit codes, never tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, BackendConfigError) as exc:
            raise ConfigProblem(str(exc)) from None
        except (TrackArchiveError, StorageError) as exc:
            raise Failed(str(exc)) from None

    return wrapper  # type: ignore[return-value]  # functools.wraps loses the precise type
