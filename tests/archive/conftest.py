"""A meeting served by the real test origin, and the CLI pointed at a real backend."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.standin import Meeting, generate_meeting, stopped_webhooks, track_webhook
from storage_backends import Backend
from tests.fixtures.backends import StorageTarget
from tests.fixtures.origin import Origin

#: Three participants, restarted tracks, an ID that needs encoding.
TRACKS = (
    ("alice", "audio", (1.0, 0.6, 0.4)),
    ("alice", "video", (0.6, 0.4)),
    ("bob", "screen_video", (0.6,)),
    ("carol/guest", "audio", (0.4,)),
)


@pytest.fixture(scope="session")
def meeting(tmp_path_factory: pytest.TempPathFactory) -> Meeting:
    """Real WebM segments for a few participants, made once per test session."""
    return generate_meeting(tmp_path_factory.mktemp("service"), tracks=TRACKS)


def serve_meeting(origin: Origin, meeting: Meeting) -> list[dict[str, Any]]:
    """Put every segment on the origin; return the service's webhooks for them."""
    for seg in meeting.segments:
        origin.add(seg.file_path, seg.path)
    return stopped_webhooks(meeting, origin.base_url)


def write_jsonl(path: Path, bodies: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(b) + "\n" for b in bodies), encoding="utf-8")
    return path


def config_for(target: StorageTarget, state: Path, *, extra: dict[str, Any] | None = None) -> Path:
    """A config.yaml a user would write for this backend, with fast retry settings."""
    options = target.options
    data: dict[str, Any] = {
        "backend": {"url": target.url},
        "state": {
            "journal": str(state / "journal.sqlite3"),
            "staging": str(state / "staging"),
            "quarantine": str(state / "quarantine"),
        },
        # Small backoffs keep failing downloads quick; the real defaults are minutes.
        "download": {
            "backoff_base": 0.01,
            "backoff_cap": 0.05,
            "not_found_grace": 0.2,
            "max_attempts": 3,
        },
        "log_level": "warning",
    }
    if target.kind == "s3":
        data["backend"]["s3"] = {
            "endpoint_url": options.s3.endpoint_url,
            "region": options.s3.region,
            "max_attempts": 2,
        }
    elif target.kind == "gcs":
        data["backend"]["gcs"] = {"endpoint": options.gcs.endpoint, "retry_deadline": 5.0}
    elif target.kind == "local":
        data["backend"]["local"] = {"fsync": False}
    for section, values in (extra or {}).items():
        data.setdefault(section, {}).update(values)
    path = state / "config.yaml"
    state.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class Run:
    """One archive invocation's result, with its JSON summary parsed."""

    result: Result

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads(self.result.stdout)

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


@pytest.fixture(params=["local", "s3", "gcs"])
def target(
    request: pytest.FixtureRequest, make_storage_target: Callable[[str], StorageTarget]
) -> StorageTarget:
    """A fresh, empty archive root on each backend."""
    return make_storage_target(request.param)


@pytest.fixture
def archived(target: StorageTarget) -> Iterator[Backend]:
    """The archive root opened for inspection."""
    with target.open() as backend:
        yield backend


@pytest.fixture
def run_archive(origin: Origin, target: StorageTarget, tmp_path: Path) -> Callable[..., Run]:
    """Run ``track-archive archive --json`` as a user would, against the test origin."""
    runner = CliRunner()

    def run(*sources: Path | str, state: Path | None = None, extra: list[str] | None = None) -> Run:
        config = config_for(target, state or tmp_path / "state")
        args = ["archive", "--config", str(config), "--allow-origin", origin.base_url, "--json"]
        result = runner.invoke(
            main, [*args, *(extra or []), *map(str, sources)], catch_exceptions=False
        )
        return Run(result)

    return run


__all__ = ["TRACKS", "config_for", "serve_meeting", "track_webhook", "write_jsonl"]
