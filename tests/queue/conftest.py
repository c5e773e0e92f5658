"""Workers as real ``track-archive worker`` processes on a real broker, archiving to moto S3.

Workers share no disk: each has its own state directory (staging), the
archive and the quarantine are S3 roots. ``workers.start()`` launches one and
``workers`` stops every one at teardown (SIGTERM, then SIGKILL if it hangs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError

from pipeline.manifest import Manifest, read_manifest
from pipeline.queue.app import segment_queue
from pipeline.standin import Meeting, generate_meeting
from storage_backends import Backend
from tests.archive.conftest import config_for, serve_meeting, write_jsonl
from tests.fixtures.backends import StorageTarget
from tests.fixtures.brokers import Broker
from tests.fixtures.origin import Origin

REPO = Path(__file__).resolve().parents[2]
#: Short enough for tests: Redis redelivers a dead worker's task after this many seconds.
VISIBILITY_TIMEOUT = 8.0
DEADLINE = 6.0
TRACKS = (
    ("alice", "audio", (0.6, 0.4, 0.4)),
    ("bob", "video", (0.4, 0.4)),
)


@pytest.fixture(scope="session")
def small_meeting(tmp_path_factory: pytest.TempPathFactory) -> Meeting:
    """Five real WebM segments of two participants."""
    return generate_meeting(tmp_path_factory.mktemp("queue-meeting"), tracks=TRACKS)


@dataclass
class Rig:
    """A broker, an S3 archive and a quarantine, an origin, and a config per machine."""

    broker: Broker
    target: StorageTarget
    quarantine: StorageTarget
    origin: Origin
    tmp: Path
    #: Queue settings a test changes for every machine it starts after (merge_wait, ...).
    queue_options: dict[str, Any] = field(default_factory=dict)

    def config(self, name: str) -> Path:
        """The config of one machine (its own state directory)."""
        return config_for(
            self.target,
            self.tmp / name,
            extra={
                "queue": {
                    "quarantine": self.quarantine.url,
                    "visibility_timeout": VISIBILITY_TIMEOUT,
                    "merge_wait": 0.3,
                    "concurrency": 1,
                    **self.queue_options,
                },
                "download": {"deadline": DEADLINE},
            },
        )

    def command(self, *args: str, name: str = "cli") -> list[str]:
        """``track-archive ARGS`` with this rig's config (machine ``name``), broker and origin."""
        return [
            sys.executable,
            "-m",
            "pipeline.cli",
            *args[:1],
            "--config",
            str(self.config(name)),
            "--broker",
            self.broker.url,
            "--allow-origin",
            self.origin.base_url,
            *args[1:],
        ]

    def cli(
        self, *args: str, name: str = "cli", timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``track-archive ARGS`` to its end."""
        return subprocess.run(
            self.command(*args, name=name),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )

    def start_cli(self, *args: str, name: str = "cli") -> subprocess.Popen[str]:
        """Start ``track-archive ARGS`` in the background (the caller waits for it)."""
        return subprocess.Popen(
            self.command(*args, name=name),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def manifest(self, session_id: str) -> Manifest | None:
        with self.target.open() as backend:
            return read_manifest(backend, session_id)[0]

    def open(self) -> Backend:
        return self.target.open()


@dataclass
class Worker:
    """One running worker process and its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Workers:
    rig: Rig
    running: list[Worker] = field(default_factory=list)

    def start(self, name: str, *extra: str, env: dict[str, str] | None = None) -> Worker:
        """Start ``track-archive worker`` as machine ``name``.

        With ``env`` (``Gate.env``), through ``tests.queue.gate``: the same command
        with one root whose copies wait at the test's gate.
        """
        log = self.rig.tmp / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "tests.queue.gate" if env else "pipeline.cli",
            "worker",
            "--config",
            str(self.rig.config(name)),
            "--broker",
            self.rig.broker.url,
            "--allow-origin",
            self.rig.origin.base_url,
            *extra,
        ]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, **(env or {})},
            )
        worker = Worker(process, log)
        self.running.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.running:
            worker.stop()


@pytest.fixture
def rig(
    celery_broker: Broker,
    make_storage_target: Callable[[str], StorageTarget],
    origin: Origin,
    tmp_path: Path,
) -> Rig:
    """Everything a multi-machine deployment needs, on loopback."""
    return Rig(
        broker=celery_broker,
        target=make_storage_target("s3"),
        quarantine=make_storage_target("s3"),
        origin=origin,
        tmp=tmp_path,
    )


@pytest.fixture
def workers(rig: Rig) -> Iterator[Workers]:
    """Start worker processes on demand; all are stopped at teardown."""
    pool = Workers(rig)
    try:
        yield pool
    finally:
        pool.stop_all()


def webhooks_file(rig: Rig, meeting: Meeting, name: str = "webhooks.jsonl", **faults: Any) -> Path:
    """Serve the meeting on the rig's origin (with ``faults`` on every file); save its webhooks."""
    bodies = serve_meeting(rig.origin, meeting)
    if faults:
        for segment in meeting.segments:
            rig.origin.add(segment.file_path, segment.path, **faults)
    return write_jsonl(rig.tmp / name, bodies)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """A background command, killed at the end if the test did not wait for it."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def finish(process: subprocess.Popen[str], timeout: float = 150) -> tuple[int, str, str]:
    """Wait for a background command: its exit code, stdout and stderr."""
    with running(process):
        out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def queued_tasks(rig: Rig) -> int:
    """Segment tasks waiting on the broker."""
    with Connection(rig.broker.url, connect_timeout=5) as conn:
        try:
            _, count, _ = segment_queue()(conn.default_channel).queue_declare(passive=True)
        except ChannelError:  # Redis keeps no empty queue: nothing waiting
            return 0
        return int(count)
