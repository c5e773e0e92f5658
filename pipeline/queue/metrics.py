"""A worker's Prometheus metrics (``prometheus_client``), served on ``--metrics-port``.

Each worker owns its registry, so several workers in one process (tests) keep
separate counts. Compare-and-swap retries are counted here: they show how much
the batched manifest merges contend.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

DOWNLOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class WorkerMetrics:
    """Counters and histograms named ``track_archive_worker_*`` and ``track_archive_manifest_*``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.segments = Counter(
            "track_archive_worker_segments",
            "Segment tasks finished, by outcome (archived, skipped, failed, retried).",
            ("outcome",),
            registry=r,
        )
        self.bytes = Counter(
            "track_archive_worker_archived_bytes", "Bytes of segments archived.", registry=r
        )
        self.seconds = Histogram(
            "track_archive_worker_segment_seconds",
            "Time to download, verify and store one segment.",
            buckets=DOWNLOAD_BUCKETS,
            registry=r,
        )
        self.malformed = Counter(
            "track_archive_worker_malformed_messages",
            "Messages that were not valid jobs: failed once, never retried.",
            registry=r,
        )
        self.manifest_writes = Counter(
            "track_archive_manifest_writes", "Manifest documents written.", registry=r
        )
        self.manifest_entries = Counter(
            "track_archive_manifest_entries_merged",
            "Manifest messages merged (several per write when batched).",
            registry=r,
        )
        self.cas_retries = Counter(
            "track_archive_manifest_cas_retries",
            "Manifest writes that lost a compare-and-swap race and were re-read and retried.",
            registry=r,
        )
        for outcome in ("archived", "skipped", "failed", "retried"):
            self.segments.labels(outcome=outcome)
        self._server: Any = None

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``port`` (0 picks one); return the port."""
        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
