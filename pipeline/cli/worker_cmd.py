"""``track-archive worker``: archive segments from a Celery broker."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import (
    allow_origin_option,
    backend_option,
    broker_option,
    config_option,
    load,
    open_configured_backend,
    setup_logging,
    translate_errors,
)


@click.command("worker")
@config_option
@broker_option
@backend_option
@click.option(
    "--concurrency", type=click.IntRange(min=1), help="Segments archived at once (default 4)."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics on this port (queue.metrics_port).",
)
@allow_origin_option
@click.option(
    "--allow-root",
    "allow_roots",
    multiple=True,
    metavar="URL",
    help="A storage root sync --broker may copy from or to (repeatable; queue.sync_roots).",
)
@translate_errors
def worker(
    config_path: Path | None,
    broker_url: str | None,
    backend_url: str | None,
    concurrency: int | None,
    metrics_port: int | None,
    allow_origins: tuple[str, ...],
    allow_roots: tuple[str, ...],
) -> None:
    """Archive segments queued on the broker by serve --broker and archive --broker.

    Run any number of workers on any number of machines against one broker and
    one archive root; they share no disk. Stops gracefully on SIGTERM or Ctrl-C
    (running segments finish, their manifest entries are merged).
    """
    from ..queue.run import run_worker

    config = load(
        config_path,
        **{
            "backend.url": backend_url,
            "queue.broker": broker_url,
            "queue.concurrency": concurrency,
            "queue.metrics_port": metrics_port,
            "download.allowed_origins": list(allow_origins) or None,
            "queue.sync_roots": list(allow_roots) or None,
        },
    )
    setup_logging(config.log_level)
    policy = config.download
    backend = open_configured_backend(config)
    quarantine = open_configured_backend(
        config, config.queue.quarantine or str(config.state.quarantine_dir)
    )
    roots = [open_configured_backend(config, url) for url in config.queue.sync_roots]
    try:
        code = run_worker(
            config,
            backend=backend,
            quarantine=quarantine,
            policy=policy,
            sync_roots={root.url: root for root in roots},
        )
    finally:
        for root in roots:
            root.close()
        quarantine.close()
        backend.close()
    sys.exit(code)


commands = [worker]
