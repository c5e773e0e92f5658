"""Real ``track-archive`` processes over a real loopback origin, for the state directory tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.standin import Meeting, generate_meeting
from storage_backends import Backend
from tests.fixtures.backends import StorageTarget

# The live receiver's fixtures (stand-in service, receivers started and stopped per test).
from tests.live.conftest import standin, start_receiver  # noqa: F401

#: Two participants with restarted tracks: enough segments for runs to overlap.
TRACKS = (
    ("alice", "audio", (0.8, 0.6, 0.4)),
    ("bob", "video", (0.6, 0.4)),
)


@pytest.fixture(scope="session")
def journal_meeting(tmp_path_factory: pytest.TempPathFactory) -> Meeting:
    """Real WebM segments, made once per test session."""
    return generate_meeting(tmp_path_factory.mktemp("journal-service"), tracks=TRACKS)


@pytest.fixture
def local_target(make_storage_target: Callable[[str], StorageTarget]) -> StorageTarget:
    """A fresh local archive root."""
    return make_storage_target("local")


@pytest.fixture
def local_archive(local_target: StorageTarget) -> Iterator[Backend]:
    """The archive root opened for inspection."""
    with local_target.open() as backend:
        yield backend


def write_config(path: Path, target: StorageTarget, **sections: dict[str, Any]) -> Path:
    """A config.yaml naming only the backend and fast retries: state paths stay at their defaults."""
    data: dict[str, Any] = {
        "backend": {"url": target.url, "local": {"fsync": False}},
        "download": {
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            "not_found_grace": 0.2,
            "max_attempts": 3,
        },
        "log_level": "warning",
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def archive_command(config: Path, origin_url: str, source: Path, *extra: str) -> list[str]:
    """``track-archive archive --json`` as a user types it."""
    return [
        sys.executable,
        "-m",
        "pipeline.cli",
        "archive",
        "--config",
        str(config),
        "--allow-origin",
        origin_url,
        "--json",
        *extra,
        str(source),
    ]


def start(command: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a real process in ``cwd``."""
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
