"""Live-mode rigs: the stand-in recording service and the receiver, each a real uvicorn server.

Both run on 127.0.0.1 in threads and are stopped by their fixtures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.config import Config
from pipeline.journal import SQLiteJournal
from pipeline.live import SIGNATURE_HEADER, WEBHOOK_PATH, SignatureVerifier, create_app
from pipeline.live.runner import HttpParser, ServerThread
from pipeline.standin import RecordingService, StandInServer
from storage_backends import Backend, BackendOptions, open_backend

TOKEN = "standin-token"


@dataclass
class StandIn:
    """The running stand-in: its state and its base URL."""

    service: RecordingService
    url: str


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    """The stand-in recording service (API, signed webhooks, files) on loopback."""
    service = RecordingService(tmp_path / "service", token=TOKEN, segment_seconds=(0.6, 0.4))
    with StandInServer(service.app()) as server:
        yield StandIn(service, server.url)


def live_config(tmp: Path, origin: str, **overrides: Any) -> Config:
    """A receiver config writing under ``tmp`` and trusting ``origin`` for fileUrls."""
    settings: dict[str, Any] = {
        "backend.url": str(tmp / "archive"),
        "state.journal": str(tmp / "state" / "journal.sqlite3"),
        "state.staging": str(tmp / "state" / "staging"),
        "state.quarantine": str(tmp / "state" / "quarantine"),
        "download.allowed_origins": [origin],
        "download.backoff_base": 0.05,
        "download.backoff_cap": 0.2,
        "download.not_found_grace": 5.0,
        "serve.workers": 4,
    }
    settings.update(overrides)
    return Config().override(**settings)


@dataclass
class Receiver:
    """A running receiver and what it writes to."""

    url: str
    config: Config
    backend: Backend

    @property
    def webhook_url(self) -> str:
        """Where the service should deliver."""
        return self.url + WEBHOOK_PATH

    def journal(self) -> SQLiteJournal:
        """A second connection to the receiver's journal (the caller closes it)."""
        return SQLiteJournal(self.config.state.journal)

    def session(self, session_id: str) -> httpx.Response:
        """``GET /sessions/{id}``."""
        return httpx.get(f"{self.url}/sessions/{session_id}", timeout=10)


StartReceiver = Callable[..., Receiver]


@pytest.fixture
def start_receiver(tmp_path: Path, standin: StandIn) -> Iterator[StartReceiver]:
    """Start receivers (verifying with the stand-in's key unless told otherwise); all stop at the end."""
    with ExitStack() as stack:

        def start(
            *,
            verify: bool = True,
            backend: Backend | None = None,
            tick: float = 0.2,
            root: Path | None = None,
            parser: HttpParser = "auto",
            **overrides: Any,
        ) -> Receiver:
            config = live_config(root or tmp_path, standin.url, **overrides)
            if backend is None:
                backend = stack.enter_context(open_backend(config.backend.url, BackendOptions()))
            verifier = SignatureVerifier(_key(standin)) if verify else None
            app = create_app(
                config,
                backend=backend,
                policy=config.download,
                verifier=verifier,
                tick=tick,
            )
            server = stack.enter_context(
                ServerThread(app, header_timeout=config.serve.header_timeout, parser=parser)
            )
            return Receiver(server.url, config, backend)

        yield start


def _key(standin: StandIn) -> Any:
    from pipeline.live import load_public_key

    return load_public_key(standin.service.key.public_pem)


def post_signed(
    standin: StandIn, receiver: Receiver, payload: Any, client: httpx.Client | None = None
) -> httpx.Response:
    """Deliver ``payload`` signed by the stand-in, as the service would."""
    body, headers = standin.service.signed(payload)
    if client is not None:
        return client.post(receiver.webhook_url, content=body, headers=headers)
    return httpx.post(receiver.webhook_url, content=body, headers=headers, timeout=10)


def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


def segments_done(receiver: Receiver, count: int) -> Callable[[], bool]:
    """A predicate: the receiver's journal holds ``count`` archived segments."""

    def check() -> bool:
        journal = receiver.journal()
        try:
            return journal.counts()["done"] >= count
        finally:
            journal.close()

    return check


def manifest_of(receiver: Receiver, session_id: str) -> dict[str, Any] | None:
    """The stored manifest document of a session, or ``None``."""
    from pipeline.layout import manifest_key

    stat = receiver.backend.stat(manifest_key(session_id))
    if stat is None:
        return None
    data, _ = receiver.backend.get_bytes(manifest_key(session_id))
    result: dict[str, Any] = json.loads(data)
    return result


def metric(receiver: Receiver, name: str, **labels: str) -> float | None:
    """One sample of the receiver's ``GET /metrics``, parsed as Prometheus would; ``None`` if absent."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(receiver.url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


__all__ = ["SIGNATURE_HEADER", "TOKEN"]
