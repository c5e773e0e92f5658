"""``sync --broker``: segment copies run on real worker processes, manifests are written last."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.fixtures.backends import StorageTarget
from tests.queue.conftest import REPO, Rig, Workers, summary_of, wait_until
from tests.sync.builders import build_session

LAYOUT = {("alice", "audio"): 2, ("bob", "video"): 1}
SESSIONS = ("s-1", "s-2")


def _sync(rig: Rig, src: str, dst: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline.cli", "sync", "--json"]
    command += ["--config", str(rig.config("cli")), "--broker", rig.broker.url, src, dst]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)


def _local_archive(rig: Rig, make_storage_target: Callable[[str], StorageTarget]) -> StorageTarget:
    source = make_storage_target("local")
    with source.open() as backend:
        for n, session in enumerate(SESSIONS):
            build_session(backend, rig.tmp, session, LAYOUT, start_ms=1_780_000_000_000 + n)
    return source


def test_sync_through_workers_copies_each_object_once_and_manifests_last(
    rig: Rig, workers: Workers, make_storage_target: Callable[[str], StorageTarget]
) -> None:
    source = _local_archive(rig, make_storage_target)
    roots = ("--allow-root", source.url, "--allow-root", rig.target.url)
    workers.start("worker-a", *roots)
    workers.start("worker-b", *roots)

    result = _sync(rig, source.url, rig.target.url)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    segments = len(SESSIONS) * sum(LAYOUT.values())
    assert (summary["copied"], summary["failed"], summary["conflicts"]) == (
        segments + len(SESSIONS),
        0,
        0,
    )
    assert summary["dryRun"] is False
    # Each object copied once: a second create-only write would have been a conflict. That
    # the workers (not the caller) copy is what the refused-root test below shows.
    with source.open() as src, rig.open() as dst:
        want = {s.key: s.size for s in src.list()}
        got = {s.key: s for s in dst.list()}
    assert {k: s.size for k, s in got.items()} == want
    for session in SESSIONS:
        manifest = got[f"{session}/manifest.json"]
        named = [s for k, s in got.items() if k.startswith(f"{session}/") and k != manifest.key]
        assert manifest.updated and all(s.updated and s.updated <= manifest.updated for s in named)

    again = _sync(rig, source.url, rig.target.url)
    assert again.returncode == 0, again.stderr
    assert (summary_of(again)["copied"], summary_of(again)["skipped"]) == (0, len(want))


def test_a_worker_refuses_a_root_it_is_not_configured_with(
    rig: Rig, workers: Workers, make_storage_target: Callable[[str], StorageTarget]
) -> None:
    source = _local_archive(rig, make_storage_target)
    worker = workers.start("worker-a", "--allow-root", source.url)

    result = _sync(rig, source.url, rig.target.url)
    assert result.returncode == 1, result.stderr
    summary = summary_of(result)
    assert summary["copied"] == 0
    assert summary["failed"] == len(SESSIONS) * (sum(LAYOUT.values()) + 1)
    refused = [i for i in summary["items"] if "not an allowed sync root" in (i["reason"] or "")]
    assert len(refused) == len(SESSIONS) * sum(LAYOUT.values())
    wait_until(lambda: "refused" in worker.text(), 10, "the refusal in the worker's log")
    assert f"destination root {rig.target.url!r} is not an allowed sync root" in worker.text()
    with rig.open() as dst:
        assert list(dst.list()) == []
