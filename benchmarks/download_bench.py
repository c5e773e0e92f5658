"""Download engine benchmark: throughput against curl, and peak memory against file size.

Run from the repository root::

    .venv/bin/python benchmarks/download_bench.py [--files 16 --size-mib 64 --concurrency 8]

1. Throughput: N real VP8 WebM files of S MiB are served by the test origin in a
   separate process (sendfile from disk). ``Downloader`` fetches them all with every
   verification on (length, ETag MD5, SHA-256, CRC32C, full demux, kind); curl
   fetches the same files at the same concurrency through ``xargs -P``, also to files.
   Both are timed the same way: one untimed warm-up run each, then alternating order
   over several rounds, each run starting with the previous output deleted and the
   disk synced, so that neither pays for the other's write-back. The median ratio of
   throughputs is printed (target >= 0.8), with the CPU seconds each side used: on a
   busy machine CPU, not the network, decides the ratio. curl writing to /dev/null
   shows the origin's ceiling.
2. Memory: one 100 MiB and one 1 GiB WebM are each fetched and verified in a fresh
   child process, which reports its peak RSS; the difference must stay within 20 MB.

The large files are real media: a short noisy VP8 clip is encoded once and its packets
are muxed again and again with shifted timestamps until the size is reached. No frame
is re-encoded, so 1 GiB of valid, fully demuxable WebM takes seconds to make.
"""

from __future__ import annotations

import argparse
import asyncio
import filecmp
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.download import Downloader, DownloadPolicy  # noqa: E402 - after sys.path

MIB = 1024**2
RUSAGE_CHILDREN = resource.RUSAGE_CHILDREN


def make_big_webm(path: Path, size: int) -> Path:
    """A valid VP8 WebM of at least ``size`` bytes, made by re-muxing one encoded clip."""
    clip = path.with_suffix(".clip.webm")
    fps = 25
    with av.open(os.fspath(clip), "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.bit_rate = 40_000_000
        stream.options = {"g": str(fps), "crf": "4", "b:v": "40M"}
        rng = random.Random(0)
        for i in range(fps * 2):
            # Noise does not compress: a few frames make many megabytes of real VP8.
            frame = av.VideoFrame(640, 360, "yuv420p")
            for plane in frame.planes:
                plane.update(rng.randbytes(plane.buffer_size))
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return loop_clip(clip, path, size)


def loop_clip(clip: Path, path: Path, size: int) -> Path:
    """Mux ``clip``'s packets into ``path`` again and again, timestamps shifted, up to ``size``.

    No frame is re-encoded; ``clip`` is removed afterwards.
    """
    with av.open(os.fspath(clip)) as src:
        template = src.streams.video[0]
        packets = [
            (bytes(p), p.pts, p.is_keyframe, p.time_base)
            for p in src.demux(template)
            if p.size and p.pts is not None
        ]
        span = max(pts for _, pts, _, _ in packets) + packets[1][1] - packets[0][1]
        with av.open(os.fspath(path), "w", format="webm") as out:
            stream = out.add_stream_from_template(template)
            written, loop = 0, 0
            while written < size:
                for data, pts, key, time_base in packets:
                    packet = av.Packet(data)
                    packet.pts = packet.dts = pts + loop * span
                    packet.time_base, packet.stream = time_base, stream
                    packet.is_keyframe = key
                    out.mux(packet)
                    written += len(data)
                loop += 1
    clip.unlink()
    return path


def start_origin(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The test origin serving ``root`` in a child process; returns it and its base URL."""
    port_file = root.parent / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.origin", str(root), "--port-file", str(port_file)],
        cwd=ROOT,
    )
    for _ in range(600):
        if port_file.exists():
            return proc, f"http://127.0.0.1:{port_file.read_text()}"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("origin did not start")


async def fetch_all(base: str, names: list[str], dest: Path, concurrency: int) -> list[bool]:
    policy = DownloadPolicy(allowed_origins=(base,), concurrency=concurrency, per_host=concurrency)
    async with Downloader(policy) as downloader:
        results = await asyncio.gather(
            *(downloader.fetch(f"{base}/{n}", dest / n, kind="video") for n in names)
        )
    for r in results:
        if not r.ok:
            print("FAILED", r.url, r.reason)
    return [r.ok for r in results]


def curl_all(base: str, names: list[str], dest: Path | None, concurrency: int) -> None:
    """curl fetches every file, ``concurrency`` at a time, into ``dest`` (None: discard)."""
    urls = "\n".join(f"{base}/{n}" for n in names) + "\n"
    out = "/dev/null" if dest is None else f'"{dest}/$(basename "$0")"'
    subprocess.run(
        f"xargs -P {concurrency} -n 1 sh -c 'curl -sf -o {out} \"$0\"'",
        input=urls.encode(),
        shell=True,
        check=True,
    )


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], object], who: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``run``; CPU of this process or of its waited-for children."""
    os.sync()  # the previous run's write-back must not land on this one
    cpu, t0 = cpu_seconds(who), time.perf_counter()
    run()
    return time.perf_counter() - t0, cpu_seconds(who) - cpu


def fresh(path: Path) -> Path:
    """``path`` as a new empty directory (created before the timer starts)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def throughput(base: str, served: Path, names: list[str], args: argparse.Namespace) -> None:
    """Alternate our downloader and curl over ``args.rounds`` rounds; print the ratios."""
    work = served.parent
    mib = sum((served / n).stat().st_size for n in names) / MIB
    ceiling, _ = timed(lambda: curl_all(base, names, None, args.concurrency), RUSAGE_CHILDREN)
    print(
        f"throughput: {args.files} files x {mib / args.files:.0f} MiB, "
        f"concurrency {args.concurrency}, {args.rounds} rounds in alternating order"
    )
    print(f"  origin ceiling (curl to /dev/null): {mib / ceiling:8.1f} MiB/s")
    ours, theirs = work / "ours", work / "curl"
    verified: list[bool] = []

    def run_ours() -> None:
        verified.extend(asyncio.run(fetch_all(base, names, fresh(ours), args.concurrency)))

    def run_curl() -> None:
        curl_all(base, names, fresh(theirs), args.concurrency)

    runs = {
        "track-archive": (run_ours, resource.RUSAGE_SELF),
        "curl": (run_curl, RUSAGE_CHILDREN),
    }
    # A first untimed run of each: the first writes after media generation pay for
    # page-cache reclaim (curl's CPU doubled in its first run), whoever comes first.
    for run, who in runs.values():
        timed(run, who)
    verified.clear()
    ratios: list[float] = []
    same = True
    for round_ in range(1, args.rounds + 1):
        shutil.rmtree(ours, ignore_errors=True)
        shutil.rmtree(theirs, ignore_errors=True)
        seconds: dict[str, float] = {}
        for name in list(runs) if round_ % 2 else list(reversed(runs)):
            run, who = runs[name]
            seconds[name], cpu = timed(run, who)
            print(
                f"  round {round_} {name:13} {mib / seconds[name]:8.1f} MiB/s "
                f"({seconds[name]:.2f} s wall, {cpu:.2f} s CPU)"
            )
        same = same and all(filecmp.cmp(ours / n, theirs / n, shallow=False) for n in names)
        ratios.append(seconds["curl"] / seconds["track-archive"])
    shutil.rmtree(ours)
    shutil.rmtree(theirs)
    print(f"  all verified: {all(verified)}, same bytes as curl: {same}")
    print(
        f"  ratio (ours / curl): median {statistics.median(ratios):.2f}x, "
        f"rounds {', '.join(f'{r:.2f}' for r in ratios)}   (target >= 0.8x)"
    )


def child_rss(url: str, dest: str) -> None:
    """Fetch one file with full verification and print peak RSS in KiB (child mode)."""
    base = url.rsplit("/", 1)[0]
    ok = asyncio.run(fetch_all(base, [url.rsplit("/", 1)[1]], Path(dest), 1))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{int(all(ok))} {rss}")


def measure_rss(url: str, dest: Path) -> tuple[bool, int]:
    out = (
        subprocess.run(
            [sys.executable, __file__, "--child-rss", url, str(dest)],
            capture_output=True,
            check=True,
            cwd=ROOT,
        )
        .stdout.decode()
        .split()
    )
    return out[-2] == "1", int(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child-rss", nargs=2, metavar=("URL", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        child_rss(*args.child_rss)
        return
    if not shutil.which("curl"):
        sys.exit("curl is needed as the reference")

    with tempfile.TemporaryDirectory(prefix="dl-bench-") as tmp:
        work = Path(tmp)
        served = work / "served"
        served.mkdir()
        started = time.perf_counter()
        template = make_big_webm(served / "f0.webm", args.size_mib * MIB)
        names = [template.name]
        for i in range(1, args.files):
            os.link(template, served / f"f{i}.webm")  # same bytes, one disk copy
            names.append(f"f{i}.webm")
        if not args.skip_memory:
            make_big_webm(served / "m100.webm", 100 * MIB)
            make_big_webm(served / "m1g.webm", args.big_mib * MIB)
        print(f"media generated in {time.perf_counter() - started:.1f} s")

        proc, base = start_origin(served)
        try:
            throughput(base, served, names, args)

            if not args.skip_memory:
                mem = work / "mem"
                mem.mkdir()
                ok100, rss100 = measure_rss(f"{base}/m100.webm", mem)
                (mem / "m100.webm").unlink()
                ok1g, rss1g = measure_rss(f"{base}/m1g.webm", mem)
                size1g = (served / "m1g.webm").stat().st_size
                print("peak RSS of one fetch with full verification, in a fresh process:")
                print(f"  100 MiB file: {rss100 / 1024:7.1f} MiB (verified: {ok100})")
                print(f"  {size1g / MIB:.0f} MiB file: {rss1g / 1024:7.1f} MiB (verified: {ok1g})")
                print(f"  difference: {(rss1g - rss100) / 1024:+.1f} MiB   (target within 20 MB)")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
