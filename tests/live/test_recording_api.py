"""The recording API client and the ``recording`` / ``public-key`` commands against the stand-in."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipeline.cli import main
from pipeline.live import (
    ApiArgumentError,
    RecordingApiError,
    SignatureVerifier,
    load_public_key,
    read_public_key,
)
from pipeline.live.recording_api import RecordingApi, StartRequest
from pipeline.standin import SigningKey
from tests.fixtures.origin import Origin

from .conftest import TOKEN, StandIn


def test_start_stop_and_paged_listing(standin: StandIn) -> None:
    with RecordingApi(TOKEN, api_base=standin.url) as api:
        for participant in ("p1", "p2", "p3"):
            answer = api.start(StartRequest(room_id="r1", participant_id=participant, kind="audio"))
            assert "started" in answer["message"]
            api.stop("r1", participant, "audio")
        listed = list(api.recordings(room_id="r1", per_page=1))
        assert [r.participant_id for r in listed] == ["p1", "p2", "p3"]
        assert all(len(r.files) == 2 and r.files[0].size for r in listed)
        assert list(api.recordings(room_id="other-room")) == []
    listing_calls = [c for c in standin.service.api_calls if c[1].endswith("/track")]
    assert len(listing_calls) == 4  # three pages of one, then the empty room


@pytest.mark.parametrize(
    "build",
    [
        lambda: StartRequest(room_id="r", participant_id="p", kind="hologram"),
        lambda: StartRequest(room_id="r", participant_id="p", kind="audio", file_format="mp4"),
        lambda: StartRequest(room_id="", participant_id="p", kind="audio"),
        lambda: StartRequest(room_id="r", participant_id="p", kind="audio", webhook_url="ftp://x"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(standin: StandIn, build) -> None:
    with pytest.raises(ApiArgumentError):
        build()
    with RecordingApi(TOKEN, api_base=standin.url) as api, pytest.raises(ApiArgumentError):
        api.stop("r", "p", "hologram")
    assert standin.service.api_calls == []


def test_service_errors_carry_the_service_message(standin: StandIn) -> None:
    with (
        RecordingApi("wrong-token", api_base=standin.url) as api,
        pytest.raises(RecordingApiError) as denied,
    ):
        api.start(StartRequest(room_id="r", participant_id="p", kind="audio"))
    assert denied.value.status == 401
    assert "Invalid token" in str(denied.value)
    assert "wrong-token" not in str(denied.value)
    with (
        RecordingApi(TOKEN, api_base=standin.url) as api,
        pytest.raises(RecordingApiError) as missing,
    ):
        api.stop("r", "nobody", "video")
    assert missing.value.status == 404
    assert "No running track recording" in str(missing.value)


def test_unreachable_service_is_a_clear_error() -> None:
    with (
        RecordingApi(TOKEN, api_base="http://127.0.0.1:9", timeout=2) as api,
        pytest.raises(RecordingApiError, match="cannot reach"),
    ):
        api.public_key()


def test_recording_commands(standin: StandIn) -> None:
    runner = CliRunner()
    env = {"VIDEOSDK_TOKEN": TOKEN, "VIDEOSDK_API_BASE": standin.url}
    start = runner.invoke(
        main,
        ["recording", "start", "--room", "r9", "--participant", "ann", "--kind", "video"],
        env=env,
    )
    assert start.exit_code == 0, start.output
    stop = runner.invoke(
        main,
        ["recording", "stop", "--room", "r9", "--participant", "ann", "--kind", "video"],
        env=env,
    )
    assert stop.exit_code == 0, stop.output
    assert TOKEN not in start.output + stop.output
    again = runner.invoke(
        main,
        ["recording", "stop", "--room", "r9", "--participant", "ann", "--kind", "video"],
        env=env,
    )
    assert again.exit_code == 1
    assert "No running track recording" in again.output
    calls = len(standin.service.api_calls)
    bad = runner.invoke(
        main,
        ["recording", "start", "--room", "r9", "--participant", "ann", "--kind", "smell"],
        env=env,
    )
    assert bad.exit_code == 2
    bad_format = runner.invoke(
        main,
        [
            "recording",
            "start",
            "--room",
            "r9",
            "--participant",
            "ann",
            "--kind",
            "audio",
            "--file-format",
            "mkv",
        ],
        env=env,
    )
    assert bad_format.exit_code == 2 and "only webm" in bad_format.output
    no_token = runner.invoke(
        main,
        ["recording", "start", "--room", "r9", "--participant", "ann", "--kind", "audio"],
        env={"VIDEOSDK_TOKEN": "", "VIDEOSDK_API_BASE": standin.url},
    )
    assert no_token.exit_code == 2 and "VIDEOSDK_TOKEN" in no_token.output
    assert len(standin.service.api_calls) == calls


def test_public_key_fetch_stores_a_key_that_verifies_webhooks(
    standin: StandIn, tmp_path: Path
) -> None:
    out = tmp_path / "keys" / "videosdk.pem"
    result = CliRunner().invoke(
        main, ["public-key", "fetch", "--out", str(out), "--api-base", standin.url]
    )
    assert result.exit_code == 0, result.output
    verifier = SignatureVerifier(read_public_key(out))
    body, headers = standin.service.signed({"webhookType": "x"})
    assert verifier.verify(body, headers["videosdk-signature"]) == "raw"


def _pkcs1(key: SigningKey, *, armour: bool) -> str:
    public = load_public_key(key.public_pem)
    if armour:
        return public.public_bytes(Encoding.PEM, PublicFormat.PKCS1).decode("ascii")
    return base64.b64encode(public.public_bytes(Encoding.DER, PublicFormat.PKCS1)).decode("ascii")


@pytest.mark.parametrize("armour", [False, True], ids=["bare PKCS#1 body", "RSA PUBLIC KEY PEM"])
def test_public_key_fetch_reads_the_services_pkcs1_key(
    origin: Origin, tmp_path: Path, armour: bool
) -> None:
    # The service's real key is PKCS#1, handed out as {"publicKey": "<body>"}.
    key = SigningKey()
    answer = json.dumps({"publicKey": _pkcs1(key, armour=armour)}).encode()
    origin.add("v2/public/rsa-public-key", answer, headers={"Content-Type": "application/json"})
    out = tmp_path / "videosdk.pem"
    result = CliRunner().invoke(
        main, ["public-key", "fetch", "--out", str(out), "--api-base", origin.base_url]
    )
    assert result.exit_code == 0, result.output
    body = json.dumps({"webhookType": "x"}).encode()
    assert SignatureVerifier(read_public_key(out)).verify(body, key.sign(body)) == "raw"
    # A key file holding the bare body (as copied from the answer) loads as well.
    bare = tmp_path / "bare.txt"
    bare.write_text(_pkcs1(key, armour=armour))
    assert SignatureVerifier(read_public_key(bare)).verify(body, key.sign(body)) == "raw"


def test_a_hostile_listing_answer_is_an_api_error_not_a_crash(origin: Origin) -> None:
    origin.add("v2/recordings/participant/track", b"[" * 100_000 + b"]" * 100_000)
    with (
        RecordingApi(TOKEN, api_base=origin.base_url) as api,
        pytest.raises(RecordingApiError, match="expected a JSON answer"),
    ):
        list(api.recordings(room_id="r1"))


def test_the_token_may_be_given_as_an_option(standin: StandIn, monkeypatch) -> None:
    monkeypatch.delenv("VIDEOSDK_TOKEN", raising=False)
    args = ["recording", "start", "--room", "r7", "--participant", "cy", "--kind", "audio"]
    result = CliRunner().invoke(main, [*args, "--api-base", standin.url, "--token", TOKEN])
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
