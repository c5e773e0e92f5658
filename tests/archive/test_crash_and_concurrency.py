"""A run killed with SIGKILL and resumed; two runs racing on one session. Real processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import pytest

from pipeline.layout import segment_key
from pipeline.manifest import read_manifest

from .conftest import config_for, serve_meeting, write_jsonl


def _cli(config, origin, source, *extra):
    return [
        sys.executable,
        "-m",
        "pipeline.cli",
        "archive",
        "--config",
        str(config),
        "--allow-origin",
        origin.base_url,
        "--json",
        *extra,
        str(source),
    ]


def _expected_keys(meeting):
    return {
        segment_key(meeting.session_id, s.participant_id, s.kind, s.filename): s
        for s in meeting.segments
    }


def _assert_archive_is_whole(archived, meeting):
    expected = _expected_keys(meeting)
    keys = {s.key: s for s in archived.list() if not s.key.endswith("manifest.json")}
    assert set(keys) == set(expected)  # nothing missing, nothing extra (no partial or temp objects)
    for key, seg in expected.items():
        assert archived.stat(key).sha256 == hashlib.sha256(seg.path.read_bytes()).hexdigest()
    manifest, _ = read_manifest(archived, meeting.session_id)
    listed = [s.key for _, _, s in manifest.segments()]
    assert sorted(listed) == sorted(expected)  # each segment once


def test_a_run_killed_mid_way_is_finished_by_the_next(meeting, origin, target, archived, tmp_path):
    bodies = serve_meeting(origin, meeting)
    for seg in meeting.segments:
        origin.add(
            seg.file_path, seg.path, drip=(1500, 0.05)
        )  # ~30 kB/s: slow enough to be caught mid-way
    source = write_jsonl(tmp_path / "w.jsonl", bodies)
    config = config_for(target, tmp_path / "state")
    log = tmp_path / "killed.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            _cli(config, origin, source, "--concurrency", "1"),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    expected = _expected_keys(meeting)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if any(k in expected for k in (s.key for s in archived.list())):
            break
        time.sleep(0.05)
    process.kill()  # SIGKILL: no cleanup handlers run
    process.wait(timeout=10)
    done_before = {k for k in (s.key for s in archived.list()) if k in expected}
    assert 0 < len(done_before) < len(expected), "the kill should land mid-way"
    # Whatever the killed run left, no object at a final key is partial.
    for key in done_before:
        assert (
            archived.stat(key).sha256 == hashlib.sha256(expected[key].path.read_bytes()).hexdigest()
        )

    hits_before = {s.file_path: origin.hits(s.file_path) for s in meeting.segments}
    for seg in meeting.segments:
        origin.add(seg.file_path, seg.path)  # full speed now
    resumed = subprocess.run(_cli(config, origin, source), capture_output=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr.decode()
    _assert_archive_is_whole(archived, meeting)
    for key in done_before:
        path = expected[key].file_path
        assert origin.hits(path) == hits_before[path]  # archived before the kill: not fetched again
    assert not list((tmp_path / "state" / "staging").glob("*"))  # staging cleaned up


def test_two_concurrent_runs_on_one_session_lose_nothing(
    meeting, origin, target, archived, tmp_path
):
    source = write_jsonl(tmp_path / "w.jsonl", serve_meeting(origin, meeting))
    runs = [
        subprocess.Popen(
            _cli(config_for(target, tmp_path / f"state{n}"), origin, source),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in (1, 2)
    ]
    for process in runs:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    _assert_archive_is_whole(archived, meeting)


def test_two_runs_with_different_segments_keep_each_others_manifest_entries(
    meeting, origin, target, archived, tmp_path
):
    if target.kind == "gcs":
        pytest.skip(
            "the GCS emulator ignores ifGenerationMatch, so a lost race cannot show here; the storage contract suite covers it"
        )
    bodies = serve_meeting(origin, meeting)
    halves = [bodies[0::2], bodies[1::2]]
    runs = [
        subprocess.Popen(
            _cli(
                config_for(target, tmp_path / f"state{n}"),
                origin,
                write_jsonl(tmp_path / f"w{n}.jsonl", half),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n, half in enumerate(halves)
    ]
    for process in runs:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    _assert_archive_is_whole(archived, meeting)
    manifest, _ = read_manifest(archived, meeting.session_id)
    assert {pid for pid, _ in meeting.tracks()} <= set(manifest.lifecycle)
