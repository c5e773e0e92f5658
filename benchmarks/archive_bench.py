"""Archive benchmark: ``track-archive archive`` beside curl + openssl + sync, CPU-s/GiB and wall.

Run from the repository root::

    .venv/bin/python benchmarks/archive_bench.py [--files 16 --size-mib 72 --concurrency 8]

N realistic VP8 WebM files (4-5 KiB packets, a camera track at about 1 Mbit/s) are
served by the test origin in a separate process (sendfile from disk), once with
ETags that are the files' MD5 and once with ETags that are not (a source that
announces no checksum). On each:

- ours: the real command in a child process, ``track-archive archive hooks.jsonl
  --backend DIR --state ... --concurrency N`` with ``download.per_host`` N (the files
  share one host), every check on (length, the source's
  MD5 when announced, SHA-256 and CRC32C, the whole media demuxed, the kind), the
  local backend with its default fsync, archive and staging on one filesystem;
- the reference: the script a user would write for the same work, ``xargs -P N``
  of curl to a file followed by ``openssl dgst -sha256`` (and ``openssl dgst -md5``
  when the source announces an MD5: ``openssl dgst -sha256 -md5`` would compute
  only the last one), then one ``sync``.

Each timed run starts after ``os.sync()`` with its output removed; the order
alternates round by round after one untimed warm-up of each; medians over the
rounds are printed with the ratios. CPU is the user+system time of the whole
process tree, for ours as for the reference: this process is made a child
subreaper, so a process the run leaves behind (a pool's worker, a fork server)
is re-parented here when its parent ends, and each run waits for and reaps every
such descendant before reading ``RUSAGE_CHILDREN``. Without that, ``wait4`` on the
command counts only the descendants the command itself reaped: a
``forkserver``-started worker's CPU would be lost. ``--memory`` also reports the
archive command's peak RSS for one 100 MiB and one 1 GiB segment.

Where the media check's CPU goes (16 x 72 MiB, concurrency 8, 2 cores, load
average 5-8, each comparison in alternating rounds in one run):

- Demuxing every packet costs about 1.9 CPU-s/GiB of realistic VP8 by itself
  (0.13 s per 72 MiB): FFmpeg's Matroska demuxer, not Python. ``ffprobe
  -count_packets`` in C costs about as much, and a bare loop over PyAV's packets
  costs what the full per-stream tally does.
- PyAV lets go of the GIL around each packet it reads, so a check on a thread hands
  the GIL to the event loop (and to any other check) packet by packet: ``strace -c
  -f`` on 8 x 72 MiB without MD5 counts 30,000 to 87,000 futex calls (three runs)
  against 22,000 reads with two checks at once, 31,500 and 33,700 with one.
- Several checks at once were the worse part of that: one at a time measured 6.71
  against 7.14 CPU-s/GiB without MD5 (wall ratio 0.78x against 0.73x, median of 5
  rounds; 6.96 against 7.41 and 1.03x against 0.81x in 3 more), and with MD5 8.73
  against 8.71 (0.94x against 0.91x, 5 rounds; 8.74 against 9.02 in 3 more). The
  downloader checks one file at a time.
- Worker processes (a fork server with PyAV loaded, one pipe per worker) halved the
  futex calls (27,000) but cost more than they saved: 7.31 against 6.63 CPU-s/GiB
  without MD5 and 9.07 against 8.49 with it (median of 5 rounds), wall no better
  (0.88x against 0.88x; 0.78x against 0.89x). Starting the fork server imports PyAV
  again (0.35 CPU-s per run) and the forked workers fault in copies of its pages,
  while a hand-off costs a few microseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
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
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from download_bench import loop_clip  # noqa: E402 - after sys.path

MIB = 1024**2
GIB = 1024**3
SESSION = "bench-session"


def make_realistic_webm(path: Path, size: int, *, packet_bytes: int = 4600) -> Path:
    """A valid VP8 WebM of at least ``size`` bytes with packets of about ``packet_bytes``.

    Four seconds of moving content are encoded once at the bit rate that gives such
    packets at 25 frames/s; their packets are muxed again and again with shifted
    timestamps until the size is reached, so a large file takes seconds to make.
    """
    clip = path.with_suffix(".clip.webm")
    fps, width, height, block = 25, 640, 360, 96
    with av.open(os.fspath(clip), "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = packet_bytes * 8 * fps
        stream.codec_context.gop_size = fps * 2
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        rng = random.Random(0)
        for i in range(fps * 4):
            # A flat scene with one moving patch of detail: about what a camera
            # track at this bit rate spends its bits on, packet by packet.
            frame = av.VideoFrame(width, height, "yuv420p")
            luma = frame.planes[0]
            pixels = bytearray(b"\x50" * (luma.line_size * height))
            x0, y0 = (i * 6) % (width - block), (i * 3) % (height - block)
            for y in range(y0, y0 + block):
                row = y * luma.line_size + x0
                pixels[row : row + block] = rng.randbytes(block)
            luma.update(bytes(pixels))
            for plane in frame.planes[1:]:
                plane.update(bytes([128]) * plane.buffer_size)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return loop_clip(clip, path, size)


def mean_packet_bytes(path: Path) -> float:
    """The mean packet size of a file's first few thousand packets."""
    sizes = []
    with av.open(os.fspath(path)) as media:
        for packet in media.demux(media.streams.video[0]):
            if packet.size:
                sizes.append(packet.size)
            if len(sizes) >= 5000:
                break
    return statistics.fmean(sizes)


def start_origin(root: Path, *, opaque_etag: bool) -> tuple[subprocess.Popen[bytes], str]:
    """The test origin serving ``root`` in a child process; returns it and its base URL."""
    port_file = root.parent / f"port-{int(opaque_etag)}"
    port_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.fixtures.origin", str(root)]
    command += ["--port-file", str(port_file)] + (["--opaque-etag"] if opaque_etag else [])
    proc = subprocess.Popen(command, cwd=ROOT)
    for _ in range(1200):
        if port_file.exists():
            return proc, f"http://127.0.0.1:{port_file.read_text()}"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("origin did not start")


def write_webhooks(path: Path, base: str, names: list[str]) -> Path:
    """One ``-stopped`` webhook per file, each its own participant's video track."""
    with path.open("w", encoding="utf-8") as out:
        for n, name in enumerate(names):
            body = {
                "webhookType": "participant-track-recording-stopped",
                "data": {
                    "meetingId": "bench-room",
                    "sessionId": SESSION,
                    "participantId": f"p{n}",
                    "kind": "video",
                    "fileDetails": [{"filePath": f"/{name}", "fileUrl": f"{base}/{name}"}],
                },
            }
            out.write(json.dumps(body) + "\n")
    return path


@dataclass
class Run:
    """One timed run: wall seconds, CPU seconds, peak RSS in KiB (ours only)."""

    wall: float
    cpu: float
    rss_kib: int = 0


def fresh(path: Path) -> Path:
    """``path`` as a new empty directory (created before the timer starts)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run_ours(work: Path, hooks: Path, base: str, concurrency: int, expect: int) -> Run:
    """``track-archive archive`` in a child process; its tree's CPU, its peak RSS from ``wait4``."""
    archive, state = fresh(work / "archive"), fresh(work / "state")
    # All files come from one host: without this the per-host default (4) would halve
    # the concurrency the reference gets.
    config = work / "config.yaml"
    config.write_text(f"download:\n  per_host: {concurrency}\n", encoding="utf-8")
    command = [sys.executable, "-m", "pipeline.cli", "archive", str(hooks), "--config", str(config)]
    command += ["--backend", str(archive), "--state", str(state / "journal.sqlite3")]
    command += ["--allow-origin", base, "--concurrency", str(concurrency), "--json"]
    os.sync()  # the previous run's write-back must not land on this one
    running = child_pids()
    cpu, started = children_cpu(), time.perf_counter()
    # cwd: the work directory, so no config.yaml of the checkout is read.
    proc = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    reap_descendants(running)
    proc.returncode = os.waitstatus_to_exitcode(status)
    summary = json.loads(output)
    if proc.returncode != 0 or summary["archived"] != expect:
        sys.exit(f"track-archive failed (exit {proc.returncode}): {summary.get('failures')}")
    return Run(wall, children_cpu() - cpu, usage.ru_maxrss)


def children_cpu() -> float:
    """User+system CPU of every descendant reaped so far (see ``become_subreaper``)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``) so their CPU is counted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # 36: PR_SET_CHILD_SUBREAPER
        sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def child_pids() -> set[int]:
    """This process's children, live or zombie, from ``/proc`` (the parent pid in each stat)."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.add(int(entry.name))
    return found


def reap_descendants(running: set[int], timeout: float = 30.0) -> None:
    """Wait for and reap every child but ``running``: what the run left behind, adopted here."""
    deadline = time.monotonic() + timeout
    while left := child_pids() - running:
        for pid in left:
            with contextlib.suppress(ChildProcessError):  # reaped meanwhile
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            sys.exit(f"processes still running {timeout:.0f} s after the run: {sorted(left)}")
        time.sleep(0.02)


def run_reference(work: Path, base: str, names: list[str], concurrency: int, md5: bool) -> Run:
    """curl to a file, openssl's SHA-256 (and MD5) of it, N at a time; then ``sync``."""
    out = fresh(work / "reference")
    digests = 'openssl dgst -sha256 "$f" >/dev/null'
    if md5:
        digests += ' && openssl dgst -md5 "$f" >/dev/null'
    per_file = f'f="{out}/$(basename "$0")" && curl -sf -o "$f" "$0" && {digests}'
    urls = "".join(f"{base}/{n}\n" for n in names)
    os.sync()
    running = child_pids()
    cpu, started = children_cpu(), time.perf_counter()
    subprocess.run(
        f"xargs -P {concurrency} -n 1 sh -c '{per_file}' && sync",
        input=urls.encode(),
        shell=True,
        check=True,
    )
    wall = time.perf_counter() - started
    reap_descendants(running)
    return Run(wall, children_cpu() - cpu)


def compare(label: str, runs: dict[str, Callable[[], Run]], gib: float, rounds: int) -> None:
    """Alternate the two runs; print each, then medians and ratios."""
    for run in runs.values():  # untimed warm-up: page cache, first-write costs
        run()
    results: dict[str, list[Run]] = {name: [] for name in runs}
    for round_ in range(1, rounds + 1):
        for name in list(runs) if round_ % 2 else list(reversed(runs)):
            result = runs[name]()
            results[name].append(result)
            print(
                f"  round {round_} {name:13} {result.wall:6.2f} s wall "
                f"{gib * 1024 / result.wall:7.1f} MiB/s  {result.cpu / gib:5.2f} CPU-s/GiB"
            )
    ours, ref = results["track-archive"], results["reference"]
    wall_ratios = [r.wall / o.wall for o, r in zip(ours, ref, strict=True)]
    cpu_ours = statistics.median(o.cpu / gib for o in ours)
    cpu_ref = statistics.median(r.cpu / gib for r in ref)
    print(
        f"  {label}: track-archive median {statistics.median(o.wall for o in ours):.2f} s wall, "
        f"{cpu_ours:.2f} CPU-s/GiB; reference {statistics.median(r.wall for r in ref):.2f} s, "
        f"{cpu_ref:.2f} CPU-s/GiB"
    )
    print(
        f"  {label}: speed ratio (reference wall / ours) median "
        f"{statistics.median(wall_ratios):.2f}x, rounds {', '.join(f'{r:.2f}' for r in wall_ratios)}"
        f"; CPU ratio (ours / reference) {cpu_ours / cpu_ref:.2f}x"
    )


def memory(work: Path, base: str, big_mib: int) -> None:
    """Peak RSS of the archive command for one 100 MiB and one large segment."""
    peaks = {}
    for name in ("m100.webm", "mbig.webm"):
        hooks = write_webhooks(work / f"{name}.jsonl", base, [name])
        peaks[name] = run_ours(work, hooks, base, 1, 1).rss_kib
    print("peak RSS of track-archive archive, one segment:")
    print(f"  100 MiB: {peaks['m100.webm'] / 1024:7.1f} MiB")
    print(f"  {big_mib} MiB: {peaks['mbig.webm'] / 1024:7.1f} MiB")
    print(
        f"  difference: {(peaks['mbig.webm'] - peaks['m100.webm']) / 1024:+.1f} MiB"
        "   (target within 20 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--size-mib", type=int, default=72)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["md5", "no-md5"], help="one origin kind only")
    parser.add_argument("--memory", action="store_true", help="also peak RSS, 100 MiB vs 1 GiB")
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args()
    for tool in ("curl", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed for the reference script")
    become_subreaper()

    with tempfile.TemporaryDirectory(prefix="archive-bench-") as tmp:
        work = Path(tmp)
        served = fresh(work / "served")
        started = time.perf_counter()
        template = make_realistic_webm(served / "f0.webm", args.size_mib * MIB)
        names = [template.name]
        for i in range(1, args.files):
            os.link(template, served / f"f{i}.webm")  # same bytes, one disk copy
            names.append(f"f{i}.webm")
        if args.memory:  # before the origins start: they serve what is there then
            make_realistic_webm(served / "m100.webm", 100 * MIB)
            make_realistic_webm(served / "mbig.webm", args.big_mib * MIB)
        gib = args.files * template.stat().st_size / GIB
        print(
            f"media: {args.files} x {template.stat().st_size / MIB:.0f} MiB VP8 WebM, "
            f"mean packet {mean_packet_bytes(template) / 1024:.1f} KiB, "
            f"made in {time.perf_counter() - started:.1f} s; concurrency {args.concurrency}, "
            f"{args.rounds} rounds in alternating order"
        )
        kinds = [("md5", False), ("no-md5", True)]
        for label, opaque in kinds:
            if args.only and args.only != label:
                continue
            proc, base = start_origin(served, opaque_etag=opaque)
            try:
                hooks = write_webhooks(work / f"hooks-{label}.jsonl", base, names)
                target = "6.5" if label == "md5" else "4.5"
                print(
                    f"origin announces {'an MD5 ETag' if label == 'md5' else 'no MD5'} "
                    f"(targets: <= {target} CPU-s/GiB, speed >= 0.9x)"
                )
                compare(
                    label,
                    {
                        "track-archive": lambda b=base, h=hooks: run_ours(
                            work, h, b, args.concurrency, len(names)
                        ),
                        "reference": lambda b=base, m=not opaque: run_reference(
                            work, b, names, args.concurrency, m
                        ),
                    },
                    gib,
                    args.rounds,
                )
                if args.memory and label == "md5":
                    memory(work, base, args.big_mib)
            finally:
                proc.terminate()
                proc.wait(timeout=10)


if __name__ == "__main__":
    main()
