"""Put and get N objects of S MiB through our backends, beside ``cp`` and ``aws s3 cp``.

Runs a moto S3 server in its own process, then measures four transfers per
backend kind, each in a fresh child process so peak RSS (``ru_maxrss`` of
that child alone) is honest:

* local: ``storage_backends`` local put/get  vs  ``cp -r``
* s3:    ``storage_backends`` S3 put/get      vs  ``aws s3 cp --recursive``

and prints throughput and peak RSS with ratios (ours / reference) from one run.
Not part of the test suite::

    .venv/bin/python benchmarks/storage_bench.py --count 4 --size-mib 80
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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
        s3=S3Options(endpoint_url=args.endpoint or None, region="us-east-1"),
        local=LocalOptions(fsync=False),
    )
    files = json.loads(Path(args.manifest).read_text())
    with open_backend(args.url, options) as backend:
        for name, (crc, sha) in files.items():
            if args.child == "put":
                backend.put_file(f"bench/{name}", Path(args.src) / name, crc32c=crc, sha256=sha)
            else:
                backend.get_file(f"bench/{name}", Path(args.dest) / name)


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


def row(label: str, total_mib: float, ours: tuple[float, int], ref: tuple[float, int]) -> str:
    ours_rate, ref_rate = total_mib / ours[0], total_mib / ref[0]
    return (
        f"{label:<10} ours {ours_rate:8.1f} MiB/s {ours[1] / 1024:7.1f} MiB RSS | "
        f"ref {ref_rate:8.1f} MiB/s {ref[1] / 1024:7.1f} MiB RSS | "
        f"speed x{ours_rate / ref_rate:5.2f}  memory x{ours[1] / ref[1]:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=4, help="objects per run")
    parser.add_argument("--size-mib", type=int, default=80, help="size of each object")
    parser.add_argument("--kinds", default="local,s3")
    parser.add_argument("--child", choices=["put", "get"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--dest", help=argparse.SUPPRESS)
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

        def ours(
            kind_url: str, direction: str, dest: Path, endpoint: str = ""
        ) -> tuple[float, int]:
            dest.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable, __file__, "--child", direction, "--url", kind_url,
                "--manifest", str(manifest), "--src", str(src), "--dest", str(dest),
                "--endpoint", endpoint,
            ]  # fmt: skip
            return measured(cmd, env)

        if "local" in kinds:
            archive = work / "archive"
            put = ours(archive.as_uri(), "put", work / "unused")
            ref_put = measured(["cp", "-r", str(src), str(work / "cp-archive")], env)
            get = ours(archive.as_uri(), "get", work / "local-back")
            ref_get = measured(["cp", "-r", str(work / "cp-archive"), str(work / "cp-back")], env)
            print(row("local put", total_mib, put, ref_put))
            print(row("local get", total_mib, get, ref_get))

        if "s3" in kinds:
            aws = shutil.which("aws")
            if aws is None:
                raise SystemExit("aws CLI not on PATH")
            server, endpoint = start_moto(env)
            try:
                subprocess.run(
                    [aws, "s3", "mb", "s3://bench", "--endpoint-url", endpoint],
                    env=env, check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                put = ours("s3://bench/ours", "put", work / "unused", endpoint)
                ref_put = measured(
                    [aws, "s3", "cp", str(src), "s3://bench/ref/", "--recursive", "--endpoint-url", endpoint,
                     "--only-show-errors"],
                    env,
                )  # fmt: skip
                get = ours("s3://bench/ours", "get", work / "s3-back", endpoint)
                ref_get = measured(
                    [aws, "s3", "cp", "s3://bench/ref/", str(work / "aws-back"), "--recursive",
                     "--endpoint-url", endpoint, "--only-show-errors"],
                    env,
                )  # fmt: skip
            finally:
                server.terminate()
                server.wait(timeout=30)
            print(row("s3 put", total_mib, put, ref_put))
            print(row("s3 get", total_mib, get, ref_get))
    print(
        "ours: put_file/get_file one object at a time, S3 parts of 16 MiB x 4 in flight; "
        "ref: cp -r / aws s3 cp --recursive (10 threads, 8 MiB parts)."
    )
    print(
        f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
