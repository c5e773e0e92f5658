"""A run killed between the verified download's journal entry and its final state, resumed.

The first run is a real ``track-archive archive`` process killed with SIGKILL
at the project's own storage boundary: the local backend's ``put_file`` is
wrapped (in that process only) so the kill lands exactly before or just after
the object is stored, which no timing of an outside ``kill`` can do reliably.
The next run is the plain command; it must finish from the stored object or
the staged file, proved against the recorded size and checksums, and fetch
again whatever no longer proves.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from pipeline.layout import segment_key
from pipeline.manifest import read_manifest
from pipeline.standin import stopped_webhooks

from .conftest import archive_command, write_config

# Runs the command with put_file of keys containing NEEDLE ending the process.
_KILLED_AT_STORE = """
import os, signal, sys
from storage_backends.local import LocalBackend
mode, needle = sys.argv[1], sys.argv[2]
original = LocalBackend.put_file
def put_file(self, key, *args, **kwargs):
    if needle in key:
        if mode == "after":
            original(self, key, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, key, *args, **kwargs)
LocalBackend.put_file = put_file
sys.argv = ["track-archive", *sys.argv[3:]]
from pipeline.cli import main
main()
"""


@pytest.fixture
def killed_run(journal_meeting, origin, local_target, tmp_path):
    """Start a run that dies at bob's segment, before or after storing it; return the paths."""
    source = tmp_path / "w.jsonl"
    bodies = stopped_webhooks(journal_meeting, origin.base_url)
    source.write_text("".join(json.dumps(b) + "\n" for b in bodies), encoding="utf-8")
    for seg in journal_meeting.segments:
        origin.add(seg.file_path, seg.path)
    config = write_config(tmp_path / "config.yaml", local_target)
    command = archive_command(config, origin.base_url, source, "--concurrency", "1")
    bob = next(s for s in journal_meeting.segments if s.participant_id == "bob")
    key = segment_key(journal_meeting.session_id, "bob", bob.kind, bob.filename)

    def kill(mode: str):
        died = subprocess.run(
            [sys.executable, "-c", _KILLED_AT_STORE, mode, f"/{bob.filename}", *command[3:]],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
        )
        assert died.returncode == -9, died.stderr.decode()
        staging = tmp_path / ".track-archive" / "journal.sqlite3.d" / "staging"
        # Bob's staged download; the next segment may already be downloading beside it.
        return [p for p in staging.glob("*.part") if p.read_bytes() == bob.path.read_bytes()]

    def resume():
        finished = subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=120)
        return finished.returncode, json.loads(finished.stdout), finished.stderr.decode()

    return kill, resume, key, bob


def _proved(archive, key, seg):
    return archive.stat(key).sha256 == hashlib.sha256(seg.path.read_bytes()).hexdigest()


def _listed(archive, meeting):
    manifest, _ = read_manifest(archive, meeting.session_id)
    return sorted(s.key for _, _, s in manifest.segments())


def test_resumed_from_the_verified_staged_file_without_fetching_again(
    killed_run, origin, local_archive, journal_meeting
):
    kill, resume, key, bob = killed_run
    (staged,) = kill("before")
    assert local_archive.stat(key) is None
    code, summary, err = resume()
    assert code == 0, err
    assert origin.hits(bob.file_path) == 1  # taken from the staged file
    assert _proved(local_archive, key, bob) and key in _listed(local_archive, journal_meeting)
    assert summary["failed"] == 0 and not staged.exists()


def test_resumed_from_the_stored_object_without_fetching_again(
    killed_run, origin, local_archive, journal_meeting
):
    kill, resume, key, bob = killed_run
    for path in kill("after"):
        path.unlink()  # as if killed after the staged file was removed, before the journal knew
    assert _proved(local_archive, key, bob)
    code, summary, err = resume()
    assert code == 0, err
    assert origin.hits(bob.file_path) == 1  # taken from the stored object
    assert key in _listed(local_archive, journal_meeting) and not summary["conflicts"]


def test_a_corrupted_staged_file_is_not_trusted(killed_run, origin, local_archive, journal_meeting):
    kill, resume, key, bob = killed_run
    (staged,) = kill("before")
    data = bytearray(staged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    staged.write_bytes(bytes(data))
    code, _, err = resume()
    assert code == 0, err
    assert origin.hits(bob.file_path) == 2  # fetched again
    assert _proved(local_archive, key, bob) and key in _listed(local_archive, journal_meeting)


def test_a_stored_object_corrupted_after_the_kill_is_not_trusted(
    killed_run, origin, local_archive, local_target, journal_meeting
):
    kill, resume, key, bob = killed_run
    for path in kill("after"):
        path.unlink()
    stored = local_archive.local_path(key)
    stored.write_bytes(
        stored.read_bytes()[: stored.stat().st_size // 2]
    )  # truncated after the kill
    code, summary, err = resume()
    assert code == 0, err
    assert origin.hits(bob.file_path) == 2  # fetched again
    # The damaged object is never overwritten; the good bytes go to a conflict copy the manifest lists.
    (conflict,) = summary["conflicts"]
    assert conflict["key"] == key
    listed = _listed(local_archive, journal_meeting)
    assert conflict["storedAt"] in listed and key not in listed
    assert _proved(local_archive, conflict["storedAt"], bob)
