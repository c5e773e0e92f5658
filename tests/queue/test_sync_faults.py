"""``sync --broker`` when a worker is SIGKILLed in the middle of a copy, on Redis and RabbitMQ."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.backends import StorageTarget
from tests.queue.conftest import Rig, Workers, finish, running, wait_until
from tests.queue.gate import Gate
from tests.queue.test_sync_broker import LAYOUT, SESSIONS, local_archive, start_sync


def _key_named(held: str, keys: list[str]) -> str:
    digest = held.split(".", 1)[1]
    return next(k for k in keys if hashlib.sha256(k.encode()).hexdigest()[:12] == digest)


def _a_restarted_worker_removes_what_the_killed_copy_left(
    rig: Rig, workers: Workers, roots: tuple[str, ...]
) -> None:
    staging = rig.tmp / "worker-a" / "staging"
    left = [p for p in staging.rglob("*") if p.name.endswith(".part")]
    assert left, "the killed copy left its half-staged file"
    # The kernel released the dead worker's lock at once; the minute a sweeper also
    # waits for (a directory being made is not locked yet) is passed here by ageing it.
    for scratch in staging.iterdir():
        os.utime(scratch, (time.time() - 3600,) * 2)
    again = workers.start("worker-a", *roots)
    wait_until(lambda: not any(p.exists() for p in left), 60, "the leftover removed")
    assert again.process.poll() is None  # and the new worker runs on


@pytest.mark.parametrize(
    "moment",
    [
        # Half the object read and staged, nothing sent to the destination yet.
        "read",
        # The object stored at the destination, the task not acknowledged yet.
        "stored",
    ],
)
def test_a_worker_killed_mid_copy_leaves_every_object_copied_once_and_proved(
    rig: Rig,
    workers: Workers,
    make_storage_target: Callable[[str], StorageTarget],
    tmp_path: Path,
    moment: str,
) -> None:
    source = local_archive(rig, make_storage_target)
    with source.open() as src:
        want = {s.key: hashlib.sha256(src.get_bytes(s.key)[0]).hexdigest() for s in src.list()}
    roots = ("--allow-root", source.url, "--allow-root", rig.target.url)
    # A copy is over in milliseconds: the gate holds worker-a's first copy at ``moment`` so the
    # kill provably lands in the middle of it (see tests/queue/gate.py).
    gate = Gate(tmp_path / "gate")
    gated = source.url if moment == "read" else rig.target.url
    first = workers.start("worker-a", *roots, env=gate.env(moment, gated))
    with running(start_sync(rig, source.url, rig.target.url)) as syncing:
        try:
            held = wait_until(lambda: gate.held(first.process.pid), 60, "worker-a mid-copy")
            first.kill()
        finally:
            gate.open()  # nothing that is still alive waits at the gate any more
        victim = _key_named(held[0], list(want))
        with rig.open() as dst:
            # Killed before anything reached the destination, or after the whole object did.
            assert (dst.stat(victim) is not None) is (moment == "stored")
        workers.start("worker-b", *roots)
        code, out, err = finish(syncing)
    if moment == "read":
        _a_restarted_worker_removes_what_the_killed_copy_left(rig, workers, roots)

    assert code == 0, out + err
    summary = json.loads(out)
    copies = len(SESSIONS) * sum(LAYOUT.values())
    assert (summary["copied"], summary["failed"], summary["conflicts"]) == (
        copies + len(SESSIONS),
        0,
        0,
    ), summary
    # The dead worker's copy went back to the queue and worker-b did it. Every object once, whole: the destination holds exactly the source's keys, each with
    # the source's bytes and its recorded SHA-256; nothing partial, nothing extra.
    with rig.open() as dst:
        stored = {s.key: s for s in dst.list()}
        assert sorted(stored) == sorted(want)
        for key, sha in want.items():
            data, stat = dst.get_bytes(key)
            assert hashlib.sha256(data).hexdigest() == sha, key
            assert stat.size == len(data)
            if not key.endswith("manifest.json"):
                assert (stat.sha256 or stat.metadata.get("sha256")) == sha, key
