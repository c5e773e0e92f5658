"""Scale-out benchmark: worker processes through a broker, against each other and a local run.

Run from the repository root (needs redis-server)::

    .venv/bin/python benchmarks/scale_bench.py [--files 16 --size-mib 4 --rounds 3]

An origin in its own process serves N real VP8 WebM files, each connection
limited to ``--rate-mib`` MiB/s with ``--latency-ms`` before the first byte,
as a CDN looks from a cloud machine; the archive is a moto S3 server in its
own process; the broker is a local redis-server with AOF ``appendfsync always``.
Each run archives the same files into a fresh bucket: ``archive --broker``
queues them and waits for 1, 2 or 4 ``track-archive worker`` processes (each
archiving one segment at a time, started and ready before the clock starts),
and a local ``archive`` (one download at a time) is the reference. Runs
alternate over several rounds; the medians are printed with the ratios
(targets: 4 workers >= 3.2x one worker; one worker >= 0.9x the local run),
the CPU seconds per GiB every process of a run used, and the machine's busy
share during the run: scaling holds only while CPU is not the limit. The
manifest compare-and-swap retries the workers counted are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import boto3  # noqa: E402 - after sys.path
import httpx  # noqa: E402
import yaml  # noqa: E402
from download_bench import make_big_webm  # noqa: E402

from pipeline.queue.app import BrokerSettings, make_app  # noqa: E402
from tests.fixtures.brokers import RedisBroker, free_port  # noqa: E402

MIB = 1024**2
GIB = 1024**3
TICKS = os.sysconf("SC_CLK_TCK")
REGION = "us-east-1"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Rig:
    """The long-lived processes: origin, moto, broker."""

    tmp: Path
    files: list[Path]
    origin_url: str = ""
    s3_url: str = ""
    broker: RedisBroker | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, rate: int, latency: float) -> None:
        port_file = self.tmp / "origin.port"
        self.children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fixtures.origin",
                    str(self.tmp / "files"),
                    "--port-file",
                    str(port_file),
                    "--rate",
                    str(rate),
                    "--first-byte",
                    str(latency),
                ],
                cwd=ROOT,
            )
        )
        s3_port = free_port()
        self.children.append(
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "moto_server"),
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(s3_port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self.s3_url = f"http://127.0.0.1:{s3_port}"
        self.broker = RedisBroker(self.tmp / "redis")
        self.broker.start()
        deadline = time.monotonic() + 60
        while not port_file.exists() or not _answers(self.s3_url):
            if time.monotonic() > deadline:
                raise RuntimeError("origin or moto did not start")
            time.sleep(0.1)
        self.origin_url = f"http://127.0.0.1:{port_file.read_text()}"

    def stop(self) -> None:
        for child in self.children:
            child.terminate()
            child.wait(timeout=30)
        if self.broker is not None:
            self.broker.close()

    def webhooks(self, session: str) -> Path:
        bodies = []
        for n, path in enumerate(self.files):
            url = f"{self.origin_url}/{path.name}"
            bodies.append(
                {
                    "webhookType": "participant-track-recording-stopped",
                    "data": {
                        "meetingId": "bench",
                        "sessionId": session,
                        "participantId": f"p{n}",
                        "kind": "video",
                        "fileDetails": [{"filePath": f"/{path.name}", "fileUrl": url}],
                    },
                }
            )
        out = self.tmp / f"{session}.jsonl"
        out.write_text("".join(json.dumps(b) + "\n" for b in bodies))
        return out

    def config(self, name: str, bucket: str) -> Path:
        data: dict[str, Any] = {
            "backend": {
                "url": f"s3://{bucket}",
                "s3": {"endpoint_url": self.s3_url, "region": REGION},
            },
            "state": {"journal": str(self.tmp / name / "journal.sqlite3")},
            "download": {"allowed_origins": [self.origin_url], "concurrency": 1, "per_host": 1},
            "queue": {"concurrency": 1, "merge_wait": 0.2},
            "log_level": "warning",
        }
        path = self.tmp / name / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data))
        return path


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


def _bucket(rig: Rig) -> str:
    name = f"bench-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=rig.s3_url, region_name=REGION)
    client.create_bucket(Bucket=name)
    client.close()
    return name


@dataclass
class Result:
    seconds: float
    cpu: float
    busy: float
    cas_retries: float = 0.0


def _run(rig: Rig, label: str, workers: int) -> Result:
    """Archive every file once; ``workers`` 0 is the local ``archive`` reference."""
    bucket = _bucket(rig)
    session = f"{label}-{uuid.uuid4().hex[:8]}"
    source = rig.webhooks(session)
    env = {**os.environ, **AWS_ENV, "PYTHONPATH": str(ROOT)}
    procs: list[tuple[subprocess.Popen[bytes], int]] = []
    assert rig.broker is not None
    for n in range(workers):
        metrics_port = free_port()
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "worker",
                "--config",
                str(rig.config(f"w{n}", bucket)),
                "--broker",
                rig.broker.url,
                "--metrics-port",
                str(metrics_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append((worker, metrics_port))
    if workers:
        _wait_ready(rig.broker.url, workers)
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "archive",
        "--config",
        str(rig.config("cli", bucket)),
        "--json",
        str(source),
    ]
    if workers:
        command[4:4] = ["--broker", rig.broker.url]
    watched = [p.pid for p, _ in procs] + [c.pid for c in rig.children]
    if rig.broker._process is not None:
        watched.append(rig.broker._process.pid)
    before_cpu = sum(cpu_seconds(pid) for pid in watched)
    # Only the archive command ends (and is reaped) inside this window.
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = machine_busy()
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    busy1, total1 = machine_busy()
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(cpu_seconds(pid) for pid in watched) - before_cpu
    cpu += (after_children.ru_utime - before_children.ru_utime) + (
        after_children.ru_stime - before_children.ru_stime
    )
    summary = json.loads(run.stdout or "{}")
    if run.returncode != 0 or summary.get("archived") != len(rig.files):
        raise RuntimeError(f"{label}: {run.returncode} {run.stdout[-500:]} {run.stderr[-2000:]}")
    retries = 0.0
    for _, port in procs:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        match = re.search(r"^track_archive_manifest_cas_retries_total (\S+)$", text, re.M)
        retries += float(match.group(1)) if match else 0.0
    for worker, _ in procs:
        worker.terminate()
        worker.wait(timeout=60)
    return Result(seconds, cpu, (busy1 - busy0) / max(1, total1 - total0), retries)


def _wait_ready(broker: str, count: int) -> None:
    app = make_app(BrokerSettings(url=broker, visibility_timeout=3600))
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers did not come up")
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--size-mib", type=float, default=4)
    parser.add_argument("--rate-mib", type=float, default=8)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(AWS_ENV)
    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    (tmp / "files").mkdir()
    one = make_big_webm(tmp / "one.webm", int(args.size_mib * MIB))
    files = []
    for n in range(args.files):
        target = tmp / "files" / f"track_recording_p{n}_video_{1793631600000 + n}.webm"
        shutil.copyfile(one, target)
        files.append(target)
    total_bytes = sum(f.stat().st_size for f in files)
    rig = Rig(tmp, files)
    runs = {"local archive": 0, "1 worker": 1, "2 workers": 2, "4 workers": 4}
    results: dict[str, list[Result]] = {label: [] for label in runs}
    try:
        rig.start(int(args.rate_mib * MIB), args.latency_ms / 1000)
        _run(rig, "warmup", 1)
        for round_ in range(args.rounds):
            order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
            for label in order:
                results[label].append(_run(rig, label.replace(" ", "-"), runs[label]))
                print(f"round {round_ + 1} {label}: {results[label][-1].seconds:.2f} s", flush=True)
    finally:
        rig.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n{args.files} files x {args.size_mib:g} MiB; each connection {args.rate_mib:g} MiB/s, "
        f"{args.latency_ms:g} ms to first byte; medians of {args.rounds} rounds"
    )
    print(
        f"{'run':<14} {'seconds':>8} {'MiB/s':>8} {'CPU s/GiB':>10} {'machine busy':>13} {'CAS retries':>12}"
    )
    median: dict[str, float] = {}
    for label, rs in results.items():
        median[label] = statistics.median(r.seconds for r in rs)
        cpu = statistics.median(r.cpu for r in rs) / (total_bytes / GIB)
        busy = statistics.median(r.busy for r in rs)
        retries = statistics.median(r.cas_retries for r in rs)
        print(
            f"{label:<14} {median[label]:>8.2f} {total_bytes / MIB / median[label]:>8.1f} "
            f"{cpu:>10.1f} {busy:>12.0%} {retries:>12.0f}"
        )
    print(f"\n2 workers / 1 worker: {median['1 worker'] / median['2 workers']:.2f}x")
    print(f"4 workers / 1 worker: {median['1 worker'] / median['4 workers']:.2f}x (target >= 3.2)")
    print(
        f"1 worker / local archive: {median['local archive'] / median['1 worker']:.2f}x (target >= 0.9)"
    )


if __name__ == "__main__":
    main()
