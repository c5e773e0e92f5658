"""Put and get N objects of S MiB through our backends, beside ``cp`` and ``aws s3 cp``.

Runs a moto S3 server in its own process, then measures each transfer in a
fresh child process so peak RSS (``ru_maxrss`` of that child alone) is honest:

* local: ``storage_backends`` local put/get (defaults: CRC32C + SHA-256
  recomputed, file and directory fsynced) beside two references: plain
  ``cp -r`` (no hashing, no fsync: NOT equal work) and ``cp -r`` followed by
  ``sync`` on every written file and directory (equal durability, still no
  hashing). ``cp -r`` copies one file at a time, so ours does too.
* s3: ``storage_backends`` S3 put/get beside ``aws s3 cp --recursive``. The
  CLI keeps up to 10 requests in flight over all files; ours runs a thread
  pool over files (as the sync job and the pipeline do) with its per-file part
  concurrency chosen so that at most 10 requests are in flight too. Our get
  fsyncs every file it writes, so the get is also shown beside
  ``aws s3 cp`` + ``sync``.

Prints throughput and peak RSS with ratios (ours / reference). With
``--rounds`` above 1 each figure is the median time (and the largest RSS) over
the rounds, ours and the references interleaved. Not part of the test suite::

    .venv/bin/python benchmarks/storage_bench.py --count 4 --size-mib 80 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage_backends import (  # noqa: E402 - after the path tweak for a standalone script
    BackendOptions,
    LocalOptions,
    S3Options,
    hash_file,
    open_backend,
)

MiB = 1024 * 1024
#: ``aws s3 cp``'s default ``max_concurrent_requests``.
AWS_CLI_REQUESTS = 10
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``cmd`` in a wrapper process; return (seconds, peak RSS in KiB of cmd alone)."""
    os.sync()  # start every run with no dirty pages left by the previous one
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "elapsed = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps([elapsed, rss]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], env=env, check=True, capture_output=True, text=True
    ).stdout
    seconds, rss = json.loads(out)
    return float(seconds), int(rss)


def child(args: argparse.Namespace) -> None:
    """Inside the measured child: do the transfers through storage_backends."""
    options = BackendOptions(
        s3=S3Options(
            endpoint_url=args.endpoint or None,
            region="us-east-1",
            max_concurrency=args.part_concurrency,
        ),
        local=LocalOptions(),  # the default: fsync file and directory
    )
    files = json.loads(Path(args.manifest).read_text())
    with open_backend(args.url, options) as backend:

        def transfer(item: tuple[str, list[str]]) -> None:
            name, (crc, sha) = item
            if args.child == "put":
                backend.put_file(f"bench/{name}", Path(args.src) / name, crc32c=crc, sha256=sha)
            else:
                backend.get_file(f"bench/{name}", Path(args.dest) / name)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(transfer, files.items()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_moto(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto_server did not start")


Sample = tuple[float, int]


def row(label: str, total_mib: float, ours: Sample, refs: list[tuple[str, Sample]]) -> str:
    """One line: our rate and RSS, then each reference with ours/reference ratios."""
    rate = total_mib / ours[0]
    parts = [f"{label:<9} ours {rate:7.1f} MiB/s {ours[1] / 1024:6.1f} MiB RSS"]
    for name, ref in refs:
        ref_rate = total_mib / ref[0]
        parts.append(
            f"{name}: {ref_rate:7.1f} MiB/s {ref[1] / 1024:6.1f} MiB RSS "
            f"-> speed x{rate / ref_rate:4.2f} memory x{ours[1] / ref[1]:4.2f}"
        )
    return "\n    vs ".join(parts)


def median_of(rounds: int, runs: dict[str, Callable[[], Sample]]) -> dict[str, Sample]:
    """Run every measurement ``rounds`` times, interleaved; median time, largest RSS."""
    samples: dict[str, list[Sample]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(run())
    return {
        name: (statistics.median(t for t, _ in got), max(r for _, r in got))
        for name, got in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=4, help="objects per run")
    parser.add_argument("--size-mib", type=int, default=80, help="size of each object")
    parser.add_argument("--kinds", default="local,s3")
    parser.add_argument("--rounds", type=int, default=1, help="median over this many runs")
    parser.add_argument("--child", choices=["put", "get"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--part-concurrency", type=int, default=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    kinds = args.kinds.split(",")
    env = {**os.environ, **AWS_ENV}
    total_mib = args.count * args.size_mib
    print(f"{args.count} objects x {args.size_mib} MiB = {total_mib} MiB per direction")
    with tempfile.TemporaryDirectory(prefix="storage-bench-") as tmp:
        work = Path(tmp)
        src = work / "src"
        src.mkdir()
        block = os.urandom(MiB)
        for n in range(args.count):
            with open(src / f"obj{n}.bin", "wb") as out:
                for i in range(args.size_mib):
                    out.write(bytes([n, i % 256]) + block[2:])
        manifest = work / "manifest.json"
        manifest.write_text(
            json.dumps({p.name: list(hash_file(p)[:2]) for p in sorted(src.iterdir())})
        )

        def fresh(path: Path) -> Path:
            shutil.rmtree(path, ignore_errors=True)
            return path

        def ours(
            kind_url: str, direction: str, dest: Path, *, jobs: int, parts: int, endpoint: str = ""
        ) -> Callable[[], Sample]:
            def run() -> Sample:
                fresh(dest).mkdir(parents=True)
                cmd = [
                    sys.executable, __file__, "--child", direction, "--url", kind_url,
                    "--manifest", str(manifest), "--src", str(src), "--dest", str(dest),
                    "--endpoint", endpoint, "--jobs", str(jobs), "--part-concurrency", str(parts),
                ]  # fmt: skip
                return measured(cmd, env)

            return run

        def shell(script: str, *clear: Path) -> Callable[[], Sample]:
            def run() -> Sample:
                for path in clear:
                    fresh(path)
                return measured(["sh", "-c", script], env)

            return run

        if "local" in kinds:
            archive = work / "archive"
            cp_archive, cp_back, back = work / "cp-archive", work / "cp-back", work / "local-back"
            # Put needs the archive filled before the gets; one round of puts first.
            put = median_of(
                args.rounds,
                {
                    "ours": ours(archive.as_uri(), "put", work / "unused", jobs=1, parts=1),
                    "cp": shell(f"cp -r {src} {cp_archive}", cp_archive),
                    "cp+sync": shell(
                        f"cp -r {src} {cp_archive} && sync {cp_archive} {cp_archive}/*", cp_archive
                    ),
                },
            )
            get = median_of(
                args.rounds,
                {
                    "ours": ours(archive.as_uri(), "get", back, jobs=1, parts=1),
                    "cp": shell(f"cp -r {cp_archive} {cp_back}", cp_back),
                    "cp+sync": shell(
                        f"cp -r {cp_archive} {cp_back} && sync {cp_back} {cp_back}/*", cp_back
                    ),
                },
            )
            for label, got in (("local put", put), ("local get", get)):
                print(
                    row(
                        label,
                        total_mib,
                        got["ours"],
                        [
                            ("cp -r (no fsync, no hashing; not equal work)", got["cp"]),
                            ("cp -r + sync (equal durability, no hashing)", got["cp+sync"]),
                        ],
                    )
                )
            print("  ours and cp both copy one file at a time.")

        if "s3" in kinds:
            aws = shutil.which("aws")
            if aws is None:
                raise SystemExit("aws CLI not on PATH")
            jobs = min(args.count, AWS_CLI_REQUESTS)
            parts = max(1, AWS_CLI_REQUESTS // jobs)
            server, endpoint = start_moto(env)
            aws_back, s3_back = work / "aws-back", work / "s3-back"
            try:
                subprocess.run(
                    [aws, "s3", "mb", "s3://bench", "--endpoint-url", endpoint],
                    env=env, check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                aws_cp = f"{aws} s3 cp --recursive --only-show-errors --endpoint-url {endpoint}"
                put = median_of(
                    args.rounds,
                    {
                        "ours": ours("s3://bench/ours", "put", work / "unused",
                                     jobs=jobs, parts=parts, endpoint=endpoint),
                        "aws": shell(f"{aws_cp} {src} s3://bench/ref/"),
                    },
                )  # fmt: skip
                get = median_of(
                    args.rounds,
                    {
                        "ours": ours("s3://bench/ours", "get", s3_back,
                                     jobs=jobs, parts=parts, endpoint=endpoint),
                        "aws": shell(f"{aws_cp} s3://bench/ref/ {aws_back}", aws_back),
                        "aws+sync": shell(
                            f"{aws_cp} s3://bench/ref/ {aws_back} && sync {aws_back} {aws_back}/*",
                            aws_back,
                        ),
                    },
                )  # fmt: skip
            finally:
                server.terminate()
                server.wait(timeout=30)
            print(row("s3 put", total_mib, put["ours"], [("aws s3 cp", put["aws"])]))
            print(
                row(
                    "s3 get",
                    total_mib,
                    get["ours"],
                    [
                        ("aws s3 cp (no fsync; not equal work)", get["aws"]),
                        ("aws s3 cp + sync (equal durability)", get["aws+sync"]),
                    ],
                )
            )
            print(
                f"  ours: {jobs} files at a time x {parts} parts each (<= {jobs * parts} requests), "
                f"16 MiB parts; aws: <= {AWS_CLI_REQUESTS} requests over all files, 8 MiB parts."
            )
    print(
        f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
