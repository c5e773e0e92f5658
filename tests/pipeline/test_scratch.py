"""Scratch directories: what a killed process left is removed, and nothing else ever is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.scratch import PREFIX, ScratchDir, ScratchError, sweep

#: A process that works in a scratch directory, says where, and waits to be killed.
_HOLDER = """
import sys, time
from pathlib import Path
from pipeline.scratch import ScratchDir
with ScratchDir(Path(sys.argv[1]), sys.argv[2]) as path:
    (path / "segment.part").write_bytes(b"half a download")
    print(path, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _hold(holders: list[subprocess.Popen[str]], parent: Path, purpose: str) -> Path:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(parent), purpose], stdout=subprocess.PIPE, text=True
    )
    holders.append(process)
    assert process.stdout is not None
    return Path(process.stdout.readline().strip())


def _age(path: Path, seconds: float = 3600) -> None:
    # A directory is taken for abandoned only once it was left alone for a minute.
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_killed_process_s_directory_goes_and_a_live_one_s_stays(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    staging = tmp_path / "staging"
    dead = _hold(holders, staging, "worker")
    live = _hold(holders, staging, "sync")
    holders[0].send_signal(signal.SIGKILL)
    holders[0].wait()
    assert (dead / "segment.part").exists()  # SIGKILL ran no clean-up
    _age(dead)
    _age(live)
    with ScratchDir(staging, "worker") as mine:
        assert not dead.exists()
        assert (live / "segment.part").read_bytes() == b"half a download"
        assert mine.is_dir() and mine.parent == staging
    assert not mine.exists()  # closing removes its own
    assert sorted(p.name for p in staging.iterdir()) == [live.name]


def test_nothing_but_abandoned_scratch_directories_is_ever_removed(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    # The journal's staging files, which an interrupted run resumes from.
    resumable = staging / "3f2a9c.1b2c3d4e5f60.part"
    resumable.write_bytes(b"verified bytes")
    # A file with the prefix, and a link with it to a directory of the user's.
    (staging / f"{PREFIX}notes").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("keep")
    (staging / f"{PREFIX}link").symlink_to(elsewhere, target_is_directory=True)
    # Just made, its lock not taken yet: young, so left alone.
    fresh = staging / f"{PREFIX}sync-fresh"
    fresh.mkdir()
    for path in (resumable, staging / f"{PREFIX}notes", elsewhere, fresh):
        _age(path)
    os.utime(fresh)  # made a moment ago
    assert sweep(staging) == []
    assert resumable.read_bytes() == b"verified bytes"
    assert (elsewhere / "keep").exists() and fresh.is_dir()
    # The same directory, a minute later, with no process ever having locked it.
    _age(fresh)
    assert sweep(staging) == [fresh]


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    with pytest.raises(ScratchError, match=f"cannot make a scratch directory in {blocked}"):
        ScratchDir(blocked, "sync").open()
