"""Measuring tools the benchmarks share: processes' CPU, system calls, a moto server.

Every figure a benchmark prints comes from a child process measured here, so that
each tool it compares is measured the same way.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """The S3 endpoint this script runs, and its process (whose CPU each run costs it)."""

    endpoint: str
    pid: int


@contextmanager
def moto_server() -> Iterator[Server]:
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
        yield Server(endpoint, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # A busy moto can outlive SIGTERM: never leave it running.
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Run:
    """One command's cost: wall seconds, CPU seconds (user + system, every thread),
    the load average when it started and the CPU seconds the S3 server spent meanwhile."""

    wall: float
    cpu: float
    load: float
    server_cpu: float = 0.0


def run_command(command: list[str], env: dict[str, str], server: int | None = None) -> Run:
    """Run ``command`` to completion (it must succeed) and measure it."""
    started_at = load()
    server_before = process_cpu(server) if server else 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server_cpu = process_cpu(server) - server_before if server else 0.0
    return Run(wall, cpu, started_at, server_cpu)


@dataclass(frozen=True)
class Calls:
    """System calls of one traced run (``strace -c -f``): all of them, and the futex calls."""

    total: int
    futex: int

    @property
    def steady(self) -> int:
        """All but futex: futex calls follow how long threads wait, hence the machine's load."""
        return self.total - self.futex


def syscalls(command: list[str], env: dict[str, str], scratch: Path) -> Calls:
    """Every system call ``command`` and its threads make, from ``strace -c -f``."""
    out = scratch / "strace.txt"
    subprocess.run(
        ["strace", "-c", "-f", "-o", str(out), *command],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    total = futex = None
    for line in out.read_text().splitlines():
        fields = line.split()
        if fields and fields[-1] == "futex":
            futex = int(fields[3])
        if fields and fields[-1] == "total":
            total = int(fields[3])
    if total is None:
        raise RuntimeError(f"no total in {out}")
    return Calls(total, futex or 0)


def load() -> float:
    """The one-minute load average: other work on the machine stretches every wall time."""
    return os.getloadavg()[0]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ensure_strace() -> None:
    if shutil.which("strace") is None:
        print("strace missing: apt-get install -y strace")
        subprocess.run(["apt-get", "install", "-y", "-q", "strace"], check=True)
