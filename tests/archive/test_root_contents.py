"""An archived local root holds only what the archive lists, as rclone (the reference tool) sees it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pipeline.config import Config
from pipeline.run import archive_sources, open_configured_backend
from pipeline.standin import Meeting
from pipeline.sync import sync
from tests.fixtures.origin import Origin

from .conftest import serve_meeting, write_jsonl


def _rclone(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    rclone = shutil.which("rclone")
    assert rclone, "rclone is missing: sh tests/system-packages.sh installs it"
    return subprocess.run(
        [rclone, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rclone_sees_only_the_archive_and_an_exact_copy_compares_clean(
    meeting: Meeting, origin: Origin, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    config = Config().override(
        **{
            "backend.url": str(root),
            "download.allowed_origins": [origin.base_url],
            "state.journal": str(tmp_path / "state" / "journal.sqlite3"),
        }
    )
    bodies = serve_meeting(origin, meeting)
    # Two runs, so the second updates manifests the first wrote (replacing writes, with locks).
    first = write_jsonl(tmp_path / "first.jsonl", bodies[:1])
    assert archive_sources(config, [str(first)]).failed == 0
    rest = write_jsonl(tmp_path / "rest.jsonl", bodies[1:])
    assert archive_sources(config, [str(rest)]).failed == 0
    rclone_config = tmp_path / "rclone.conf"
    rclone_config.touch()

    # Every file rclone would copy is a segment or a manifest the archive lists.
    with open_configured_backend(config) as backend:
        keys = sorted(stat.key for stat in backend.list())
        copy = open_configured_backend(config, str(tmp_path / "copy"))
        with copy:
            report = sync(backend, copy)
            assert report.summary()["failed"] == 0
    seen = _rclone("lsf", "-R", "--files-only", str(root), config=rclone_config)
    assert seen.returncode == 0, seen.stderr
    assert sorted(seen.stdout.split("\n")[:-1]) == keys
    assert len([key for key in keys if key.endswith(".webm")]) == len(meeting.segments)
    assert any(key.endswith("manifest.json") for key in keys)

    # The tool's own copy and rclone's copy both compare clean against the root.
    checked = _rclone("check", str(root), str(tmp_path / "copy"), config=rclone_config)
    assert checked.returncode == 0, checked.stderr
    mirrored = _rclone("sync", str(root), str(tmp_path / "mirror"), config=rclone_config)
    assert mirrored.returncode == 0, mirrored.stderr
    checked = _rclone("check", str(root), str(tmp_path / "mirror"), config=rclone_config)
    assert checked.returncode == 0, checked.stderr
    assert "0 differences found" in checked.stderr
