"""``sync --broker``: segment copies run on real worker processes, manifests are written last."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.fixtures.backends import StorageTarget
from tests.queue.conftest import REPO, Rig, Workers, finish, running, summary_of, wait_until
from tests.queue.gate import Gate
from tests.sync.builders import build_session

LAYOUT = {("alice", "audio"): 2, ("bob", "video"): 1}
SESSIONS = ("s-1", "s-2")


def _sync_command(rig: Rig, src: str, dst: str, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "pipeline.cli", "sync", "--json", *extra]
    return [*command, "--config", str(rig.config("cli")), "--broker", rig.broker.url, src, dst]


def _sync(rig: Rig, src: str, dst: str) -> subprocess.CompletedProcess[str]:
    command = _sync_command(rig, src, dst)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)


def start_sync(rig: Rig, src: str, dst: str, *extra: str) -> subprocess.Popen[str]:
    """``track-archive sync --json --broker ...`` in the background."""
    command = _sync_command(rig, src, dst, *extra)
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )


def local_archive(rig: Rig, make_storage_target: Callable[[str], StorageTarget]) -> StorageTarget:
    source = make_storage_target("local")
    with source.open() as backend:
        for n, session in enumerate(SESSIONS):
            build_session(backend, rig.tmp, session, LAYOUT, start_ms=1_780_000_000_000 + n)
    return source


def test_sync_through_workers_copies_each_object_once_and_manifests_last(
    rig: Rig, workers: Workers, make_storage_target: Callable[[str], StorageTarget]
) -> None:
    source = local_archive(rig, make_storage_target)
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
    source = local_archive(rig, make_storage_target)
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


def _at_least(names: list[str], count: int) -> list[str] | None:
    return names if len(names) >= count else None


def test_sync_keeps_at_most_concurrency_copies_on_the_workers_at_once(
    rig: Rig,
    workers: Workers,
    make_storage_target: Callable[[str], StorageTarget],
    tmp_path: Path,
) -> None:
    source = local_archive(rig, make_storage_target)
    # Every copy waits at the gate (half read) until the test lets it go on, so what is in
    # flight at one moment is counted by the workers themselves, whatever the timing.
    gate = Gate(tmp_path / "gate")
    roots = ("--allow-root", source.url, "--allow-root", rig.target.url)
    for name in ("worker-a", "worker-b"):
        # Eight task threads in all: without a bound every copy would be in flight at once.
        workers.start(name, *roots, "--concurrency", "4", env=gate.env("read", source.url))
    copies = len(SESSIONS) * sum(LAYOUT.values())
    limit = 2
    released = 0
    with running(start_sync(rig, source.url, rig.target.url, "--concurrency", str(limit))) as sync:
        try:
            while released < copies:
                want = min(limit, copies - released)
                held = wait_until(lambda n=want: _at_least(gate.held(), n), 60, f"{want} held")
                gate.release(held)
                released += len(held)
        finally:
            gate.open()
        code, out, err = finish(sync)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["copied"], summary["failed"]) == (copies + len(SESSIONS), 0)
    counts = gate.counts()
    assert len(counts) == copies
    # Never more than --concurrency in flight, and the bound is used: copies overlap.
    assert max(counts) == limit, counts


def test_a_sync_waiting_without_any_worker_says_so_then_finishes_when_one_starts(
    rig: Rig, workers: Workers, make_storage_target: Callable[[str], StorageTarget]
) -> None:
    source = local_archive(rig, make_storage_target)
    command = _sync_command(rig, source.url, rig.target.url)
    # This run's copy of the config warns after one idle second.
    given = Path(command[command.index("--config") + 1])
    config = yaml.safe_load(given.read_text())
    config["queue"]["idle_warning"] = 1
    quick = rig.tmp / "quick-warning.yaml"
    quick.write_text(yaml.safe_dump(config))
    command[command.index("--config") + 1] = str(quick)
    lines: list[str] = []
    with (
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        ) as process,
        running(process) as sync,
    ):
        reader = threading.Thread(target=lambda: lines.extend(sync.stderr or []), daemon=True)
        reader.start()
        warning = wait_until(
            lambda: next((line for line in lines if "no worker answers" in line), None),
            60,
            "the warning that no worker answers",
        )
        copies = len(SESSIONS) * sum(LAYOUT.values())
        assert "no copy finished for 1 s" in warning and f"{copies} copy(s) wait" in warning
        # It names the worker command that can take these copies: both roots allowed.
        assert f"--allow-root {source.url} --allow-root {rig.target.url}" in warning
        workers.start("worker-a", "--allow-root", source.url, "--allow-root", rig.target.url)
        out = sync.stdout.read() if sync.stdout else ""
        sync.wait(timeout=150)
        reader.join(timeout=10)
    assert sync.returncode == 0, "".join(lines)
    summary = json.loads(out)
    assert (summary["copied"], summary["failed"]) == (copies + len(SESSIONS), 0)
