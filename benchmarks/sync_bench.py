"""Sync and query speed beside rclone, from one run.

* a first sync of an archive of many segments, local -> local and local -> S3
  (a moto server this script starts), beside ``rclone sync --checksum``;
* a re-sync with nothing changed over about 10,000 objects, beside rclone's;
* ``segments`` over 1,000 sessions on the local backend, cold and warm index.

Run: ``.venv/bin/python benchmarks/sync_bench.py`` (needs ``rclone`` on PATH:
``apt-get install rclone``); ``--only first|resync|query`` (repeatable) runs
parts of it. Ratios above 1 mean track-archive was faster.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

# The archive builder of the test suite writes archives exactly as the archiver does.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.query import ManifestIndex, list_segments
from pipeline.sync import SyncOptions, sync
from storage_backends import Backend, BackendOptions, LocalOptions, S3Options, open_backend
from tests.sync.builders import build_session

FAST_LOCAL = BackendOptions(local=LocalOptions(fsync=False))
CONCURRENCY = 8


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in its own process, so it does not share our interpreter lock with the sync."""
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make_archive(root: Path, sessions: int, per_session: int, size: int, tmp: Path) -> Backend:
    backend = open_backend(str(root), FAST_LOCAL)
    layout = {
        ("alice", "audio"): per_session // 2,
        ("bob", "video"): per_session - per_session // 2,
    }
    for n in range(sessions):
        build_session(
            backend,
            tmp,
            f"session-{n:05d}",
            layout,
            start_ms=1_780_000_000_000 + n * 3_600_000,
            payload=lambda key, i: (f"{key}#{i}".encode() * (size // 16 + 1))[:size],
        )
    return backend


def rclone(src: str, dst: str, env: dict[str, str]) -> float:
    command = [
        "rclone", "sync", "-q", "--checksum", "--transfers", str(CONCURRENCY), "--checkers", str(CONCURRENCY),
        "--exclude", ".track-archive*", src, dst,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ours(source: Backend, dest: Backend) -> float:
    def run() -> None:
        report = sync(source, dest, SyncOptions(concurrency=CONCURRENCY))
        assert report.ok, report.problems()[:3]

    return timed(run)


def row(label: str, mine: float, theirs: float) -> None:
    print(
        f"{label:48} track-archive {mine:8.2f}s   rclone {theirs:8.2f}s   ratio {theirs / mine:6.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sessions", type=int, default=100, help="sessions in the first-sync archive"
    )
    parser.add_argument("--segments", type=int, default=10, help="segments per session")
    parser.add_argument("--size", type=int, default=256 * 1024, help="bytes per segment")
    parser.add_argument(
        "--resync-sessions", type=int, default=1000, help="sessions for the re-sync (x10 objects)"
    )
    parser.add_argument(
        "--only",
        choices=("first", "resync", "query"),
        action="append",
        help="run only these parts (repeatable; default: all)",
    )
    args = parser.parse_args()
    parts = set(args.only or ("first", "resync", "query"))
    if shutil.which("rclone") is None:
        sys.exit("rclone is not installed (apt-get install rclone)")

    with tempfile.TemporaryDirectory(prefix="sync-bench-") as scratch, moto_server() as endpoint:
        work = Path(scratch)
        (work / "rclone.conf").write_text("")
        # Only dummy credentials: no AWS_* setting of the caller (CA bundle, profile) leaks in.
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env = dict(base, RCLONE_CONFIG=str(work / "rclone.conf"), AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
                   RCLONE_CONFIG_BENCH_ENDPOINT=endpoint, RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="bench",
                   RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="bench", RCLONE_CONFIG_BENCH_REGION="us-east-1",
                   RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true")  # fmt: skip
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3_options = BackendOptions(s3=S3Options(endpoint_url=endpoint, region="us-east-1"))

        if "first" in parts:
            objects = args.sessions * (args.segments + 1)
            mib = args.sessions * args.segments * args.size / 2**20
            print(
                f"first sync: {objects} objects, {mib:.0f} MiB; concurrency {CONCURRENCY} on both sides"
            )
            source = make_archive(work / "src", args.sessions, args.segments, args.size, work)
            row("first sync local -> local",
                ours(source, open_backend(str(work / "dst-ours"), FAST_LOCAL)),
                rclone(str(work / "src"), str(work / "dst-rclone"), env))  # fmt: skip
            for bucket in ("ours", "theirs"):
                s3.create_bucket(Bucket=bucket)
            row("first sync local -> S3 (moto)",
                ours(source, open_backend("s3://ours/archive", s3_options)),
                rclone(str(work / "src"), "bench:theirs/archive", env))  # fmt: skip

        if parts & {"resync", "query"}:
            big = make_archive(work / "big", args.resync_sessions, 9, 4096, work)
            if "resync" in parts:
                print(f"\nre-sync with nothing changed: {args.resync_sessions * 10} objects")
                big_local = open_backend(str(work / "big-ours"), FAST_LOCAL)
                ours(big, big_local)
                rclone(str(work / "big"), str(work / "big-rclone"), env)
                row("re-sync local -> local", ours(big, big_local),
                    rclone(str(work / "big"), str(work / "big-rclone"), env))  # fmt: skip
                for bucket in ("big-ours", "big-theirs"):
                    s3.create_bucket(Bucket=bucket)
                big_s3 = open_backend("s3://big-ours/archive", s3_options)
                # The re-sync needs a synced copy first: time it too (many small objects).
                row("(first sync of these, local -> S3 (moto))", ours(big, big_s3),
                    rclone(str(work / "big"), "bench:big-theirs/archive", env))  # fmt: skip
                row("re-sync local -> S3 (moto)", ours(big, big_s3),
                    rclone(str(work / "big"), "bench:big-theirs/archive", env))  # fmt: skip
        if "query" in parts:
            print(f"\nsegments over {args.resync_sessions} sessions (local backend)")
            index = work / "index.sqlite3"
            cold = timed(lambda: list_segments(big, index_path=index))
            warm = timed(lambda: list_segments(big, index_path=index))
            with ManifestIndex(None) as memory:
                read_all = timed(lambda: memory.refresh(big))
            count = len(list_segments(big, participant="alice", index_path=index))
            print(f"{'cold index (reads every manifest)':48} {cold:8.3f}s")
            print(f"{'warm index (reads none)':48} {warm:8.3f}s   cold/warm {cold / warm:6.1f}x")
            print(f"{'reading every manifest, no index file':48} {read_all:8.3f}s")
            print(f"({count} segments for participant alice)")
        s3.close()


if __name__ == "__main__":
    main()
