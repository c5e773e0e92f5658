"""``track-archive worker`` as a library call: build the worker, run Celery until stopped."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from storage_backends import Backend

from ..config import Config
from ..download import DownloadPolicy
from ..scratch import ScratchDir
from .app import SEGMENT_QUEUE, BrokerSettings, make_app
from .copying import register_copy_task
from .merger import ManifestMerger
from .metrics import WorkerMetrics
from .tasks import register_tasks
from .worker import SegmentWorker

log = logging.getLogger(__name__)


def run_worker(
    config: Config,
    *,
    backend: Backend,
    quarantine: Backend,
    policy: DownloadPolicy,
    sync_roots: Mapping[str, Backend] | None = None,
) -> int:
    """Archive segments from the broker until SIGTERM/SIGINT; return the exit code.

    ``queue.concurrency`` task threads share one downloader; finished entries
    are merged into manifests by one merger thread (see ``merger``). A warm
    shutdown lets running tasks finish and merges what is buffered.
    ``sync_roots`` (by URL) are the roots ``sync --broker`` copies may use.
    """
    settings = BrokerSettings.from_config(config)
    app = make_app(settings)
    metrics = WorkerMetrics()
    if config.queue.metrics_port is not None:
        port = metrics.serve(config.queue.metrics_port)
        log.info("worker metrics on http://0.0.0.0:%d/metrics", port)
    merger = ManifestMerger(
        app,
        backend,
        batch=config.queue.merge_batch,
        wait=config.queue.merge_wait,
        metrics=metrics,
    )
    # This process's own directory in the shared staging: what a killed worker left
    # there is removed by the next worker that starts (see ``pipeline.scratch``).
    scratch = ScratchDir(config.state.staging_dir, "worker")
    staging = scratch.open()
    try:
        with SegmentWorker(
            app=app,
            backend=backend,
            quarantine=quarantine,
            policy=policy,
            staging=staging,
            metrics=metrics,
        ) as worker:
            register_tasks(app, worker, policy)
            register_copy_task(app, sync_roots or {}, temp_dir=staging)
            merger.start()
            try:
                celery_worker = app.Worker(
                    hostname=f"track-archive-{os.getpid()}@{socket.gethostname()}",
                    pool_cls="threads",
                    concurrency=config.queue.concurrency,
                    queues=[SEGMENT_QUEUE],
                    loglevel=config.log_level.upper(),
                    without_gossip=True,
                    without_mingle=True,
                    optimization="fair",
                    quiet=True,
                )
                log.info(
                    "worker %s: %d at once from %s, archiving to %s",
                    celery_worker.hostname,
                    config.queue.concurrency,
                    app.connection_for_read().as_uri(),
                    backend.url,
                )
                celery_worker.start()
                return int(celery_worker.exitcode or 0)
            finally:
                merger.stop()
    finally:
        scratch.close()
        metrics.close()
