"""Clients that send a request's head too slowly are disconnected by the real receiver."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time

import pytest

from pipeline.live.runner import HttpParser

from .conftest import SIGNATURE_HEADER, StandIn, StartReceiver, metric

STARTED = {
    "webhookType": "participant-track-recording-started",
    "data": {"meetingId": "m", "sessionId": "slow", "participantId": "p", "kind": "audio"},
}


#: Each deadline must hold whichever HTTP parser uvicorn uses.
PARSERS = pytest.mark.parametrize("parser", ["h11", "httptools"])


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(0.25)
    return sock


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (reading gives EOF or a reset)."""
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@PARSERS
def test_a_client_dripping_its_headers_is_disconnected(
    standin: StandIn, start_receiver: StartReceiver, parser: HttpParser
) -> None:
    receiver = start_receiver(parser=parser, **{"serve.header_timeout": 1.0})
    sock = _connect(receiver.url)
    head = b"POST /webhooks/videosdk HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    sent = 0
    with sock:
        # One header byte every 0.1 s would take 20 s; the server must hang up long before.
        while sent < len(head) and not _closed(sock):
            try:
                sock.sendall(head[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            time.sleep(0.1)
        assert sent < len(head), "the receiver waited for the whole slow head"
    # Prompt clients are still served, also a second request on a kept-alive connection.
    body = json.dumps(STARTED).encode()
    headers = {SIGNATURE_HEADER: standin.service.key.sign(body)}
    prompt = http.client.HTTPConnection(receiver.url.removeprefix("http://"), timeout=10)
    try:
        for _ in range(2):
            prompt.request("POST", "/webhooks/videosdk", body=body, headers=headers)
            answer = prompt.getresponse()
            assert answer.status == 200 and answer.read()
    finally:
        prompt.close()


@PARSERS
def test_a_connection_that_never_sends_a_request_is_closed(
    standin: StandIn, start_receiver: StartReceiver, parser: HttpParser
) -> None:
    receiver = start_receiver(parser=parser, **{"serve.header_timeout": 1.0})
    with _connect(receiver.url) as sock:
        sock.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""


@PARSERS
def test_a_client_dripping_its_body_gets_408(
    standin: StandIn, start_receiver: StartReceiver, parser: HttpParser
) -> None:
    receiver = start_receiver(parser=parser, **{"serve.body_timeout": 1.0})
    body = json.dumps(STARTED).encode()
    head = (
        f"POST /webhooks/videosdk HTTP/1.1\r\nHost: x\r\n"
        f"{SIGNATURE_HEADER}: {standin.service.key.sign(body)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer = b""
    sent = 0
    with _connect(receiver.url) as sock:
        sock.sendall(head)
        # One body byte every 0.1 s would take many seconds; the answer must come first.
        while sent < len(body):
            with contextlib.suppress(TimeoutError):
                answer += sock.recv(4096)
            if answer:
                break
            sock.sendall(body[sent : sent + 1])
            sent += 1
            time.sleep(0.1)
    assert sent < len(body), "the receiver waited for the whole slow body"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert metric(receiver, "track_archive_webhooks_rejected_total", reason="too_slow") == 1
