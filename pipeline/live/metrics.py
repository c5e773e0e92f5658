"""The receiver's metrics, kept and rendered by ``prometheus_client``.

Each receiver app owns its registry, so two apps in one process (tests, the
demo) never share counts. The names and labels are part of the documented
interface (README, ``GET /metrics``); ``*_created`` series are not exposed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# Only the documented series: a scrape needs no creation timestamps.
disable_created_metrics()

#: What ``generate_latest`` writes (newer clients call their default format 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class LabelledCounter:
    """A counter with one label, incremented as ``inc(reason="signature")``."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        # Each delivery counts once: the series of a label value is looked up in this
        # dict, not through prometheus_client's label checks and lock every time.
        self._series: dict[str, Counter] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` (never negative) to the labelled series; 0 makes the series appear."""
        (value,) = labels.values()
        series = self._series.get(value)
        if series is None:
            series = self._series[value] = self._counter.labels(**labels)
        series.inc(amount)


class CallbackCounter(Collector):
    """A count kept elsewhere (the journal's committer), read at scrape time."""

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._name, self._help, self._read = name, help_text, read

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._help, value=self._read())


class ReceiverMetrics:
    """The receiver's metrics, named ``track_archive_*``."""

    def __init__(
        self,
        queue_depth: Callable[[], float],
        commits: Callable[[], float] = lambda: 0.0,
        committed: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.received = LabelledCounter(
            Counter(
                "track_archive_webhooks_received",
                "Webhook deliveries accepted, by webhook type.",
                ("type",),
                registry=registry,
            )
        )
        self.rejected = LabelledCounter(
            Counter(
                "track_archive_webhooks_rejected",
                "Webhook deliveries refused, by reason (signature, too_large, too_slow, malformed, unavailable).",
                ("reason",),
                registry=registry,
            )
        )
        self.segments = LabelledCounter(
            Counter(
                "track_archive_segments",
                "Segments finished by the workers, by outcome.",
                ("outcome",),
                registry=registry,
            )
        )
        self.bytes = Counter(
            "track_archive_archived_bytes", "Bytes of segments archived.", registry=registry
        )
        self.latency = Histogram(
            "track_archive_download_seconds",
            "Time to download, verify and store one segment.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        depth = Gauge(
            "track_archive_queue_depth",
            "Segments pending or in progress plus deliveries not yet expanded.",
            registry=registry,
        )
        depth.set_function(queue_depth)
        registry.register(
            CallbackCounter(
                "track_archive_journal_commits",
                "Journal transactions that committed deliveries (concurrent deliveries share one).",
                commits,
            )
        )
        registry.register(
            CallbackCounter(
                "track_archive_deliveries_committed",
                "Deliveries committed to the journal before their answer.",
                committed,
            )
        )
        for outcome in ("archived", "failed"):
            self.segments.inc(0, outcome=outcome)

    def render(self) -> str:
        """The exposition text."""
        return generate_latest(self.registry).decode("utf-8")
