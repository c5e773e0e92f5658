"""Webhook receiver benchmark: deliveries per second with the durable commit, beside without it.

Run from the repository root::

    .venv/bin/python benchmarks/serve_bench.py [--deliveries 1000 --concurrency 32]

The receiver runs in a child process (uvicorn on 127.0.0.1, one event loop),
so the load generator does not share its interpreter. The reference is a
minimal ASGI app under the same server that only reads the body and answers
200 (defined here: the production app has no switch that skips the commit);
the measured run is the receiver with signature verification on, committing
every delivery to the SQLite journal (WAL, synchronous=FULL) before
answering, with the background workers expanding deliveries meanwhile. Every
delivery is a distinct signed ``-started`` webhook. Printed: deliveries/s of
each, their ratio, and the 99th percentile answer time of each under that
load. ``serve_wrk_bench.py`` drives the same two servers with wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.standin import SigningKey

WARMUP = 50


async def minimal_app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    """The reference: read the whole body, answer 200; nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"accepted":true}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"17")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve_child(mode: str, port: int, workdir: Path) -> None:
    """The child: build the receiver app (or the reference) and serve it until killed."""
    from pipeline.live.runner import serve_forever

    if mode == "reference":
        serve_forever(minimal_app, host="127.0.0.1", port=port)  # type: ignore[arg-type]
        return
    from pipeline.config import Config
    from pipeline.live import SignatureVerifier, create_app
    from storage_backends import BackendOptions, open_backend

    config = Config().override(
        **{
            "backend.url": str(workdir / "archive"),
            "state.journal": str(workdir / "state" / "journal.sqlite3"),
            "state.staging": str(workdir / "state" / "staging"),
            "state.quarantine": str(workdir / "state" / "quarantine"),
        }
    )
    verifier = SignatureVerifier.from_file(workdir / "key.pem")
    backend = open_backend(config.backend.url, BackendOptions())
    app = create_app(
        config,
        backend=backend,
        policy=config.download,
        verifier=verifier,
    )
    serve_forever(app, host="127.0.0.1", port=port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed_bodies(key: SigningKey, count: int, tag: str) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for n in range(count):
        body = (
            '{"webhookType": "participant-track-recording-started", "data": {"meetingId": "bench",'
            f' "sessionId": "sess-{tag}-{n % 50}", "participantId": "p{n}", "kind": "audio"}}}}'
        ).encode()
        out.append(
            (body, {"content-type": "application/json", "videosdk-signature": key.sign(body)})
        )
    return out


async def _load(
    url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            while queue:
                body, headers = queue.pop()
                began = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - began)
                if response.status_code != 200:
                    raise SystemExit(f"delivery answered {response.status_code}: {response.text}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, latencies


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def run_mode(mode: str, key: SigningKey, deliveries: int, concurrency: int) -> tuple[float, float]:
    """Deliveries per second and p99 answer seconds for one mode."""
    with tempfile.TemporaryDirectory(prefix=f"serve-bench-{mode}-") as tmp:
        workdir = Path(tmp)
        (workdir / "key.pem").write_text(key.public_pem, encoding="ascii")
        port = free_port()
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", mode, str(port), str(workdir)],
            stdout=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit(f"{mode}: the receiver did not start")
                time.sleep(0.1)
            hook = url + "/webhooks/videosdk"
            asyncio.run(_load(hook, signed_bodies(key, WARMUP, f"warm-{mode}"), concurrency))
            elapsed, latencies = asyncio.run(
                _load(hook, signed_bodies(key, deliveries, mode), concurrency)
            )
            if mode == "commit":
                events = httpx.get(url + "/healthz", timeout=10).json()["journal"]["events"]
                if events != deliveries + WARMUP:
                    raise SystemExit(
                        f"lost deliveries: {events} of {deliveries + WARMUP} in the journal"
                    )
        finally:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return deliveries / elapsed, _p99(latencies)


def main() -> None:
    """Parse arguments, run both modes, print the figures."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        serve_child(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    key = SigningKey()
    print(
        f"{args.deliveries} signed deliveries, {args.concurrency} at a time, loopback, cpus={os.cpu_count()}"
    )
    reference_rate, reference_p99 = run_mode("reference", key, args.deliveries, args.concurrency)
    print(
        f"minimal app:    {reference_rate:8.1f} deliveries/s   p99 {reference_p99 * 1000:7.1f} ms"
    )
    rate, p99 = run_mode("commit", key, args.deliveries, args.concurrency)
    print(f"durable commit: {rate:8.1f} deliveries/s   p99 {p99 * 1000:7.1f} ms")
    print(f"ratio (durable / minimal app): {rate / reference_rate:.2f}")


if __name__ == "__main__":
    main()
