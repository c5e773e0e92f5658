"""S3 specifics against moto: races the server decides, pagination, error translation."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest

from storage_backends import (
    BackendConfigError,
    BackendOptions,
    BackendUnavailable,
    IntegrityError,
    PreconditionFailed,
    S3Options,
    hash_bytes,
    hash_file,
    open_backend,
)
from storage_backends.base import ObjectStat
from storage_backends.s3 import S3Backend
from storage_backends.s3_writes import SMALL_BODY_MAX, send_small_body_at_once
from tests.fixtures.backends import StorageTarget

MiB = 1024 * 1024


@pytest.fixture
def s3_target(make_storage_target) -> StorageTarget:  # type: ignore[no-untyped-def]
    return make_storage_target("s3")


@pytest.fixture
def s3(s3_target: StorageTarget, backend_factory) -> S3Backend:  # type: ignore[no-untyped-def]
    backend = backend_factory(s3_target)
    assert isinstance(backend, S3Backend)
    return backend


def _file(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str, str]:
    path = tmp_path / name
    path.write_bytes(data)
    crc, sha, _ = hash_file(path)
    return path, crc, sha


def _record_requests(s3: S3Backend) -> list[str]:
    """Names of the S3 operations the backend's client sends from now on."""
    calls: list[str] = []
    s3.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    return calls


def _on_call(s3: S3Backend, when: str, operation: str, handler: Any) -> None:
    """Run ``handler`` before the request or on the parsed answer of ``operation``.

    botocore's own event hooks are the boundary where a fault is injected: the
    request still goes to the real server, nothing of the backend is replaced.
    """
    s3.client.meta.events.register(f"{when}-call.s3.{operation}", handler)


def _stop_hooks(s3: S3Backend, when: str, operation: str, handler: Any) -> None:
    s3.client.meta.events.unregister(f"{when}-call.s3.{operation}", handler)


def test_single_part_put_is_one_verified_request(s3: S3Backend, tmp_path: Path) -> None:
    # Sync and archive speed hinge on requests per object: the create-only
    # condition, the server's checksum and the returned stat all come from the
    # PutObject exchange itself.
    path, crc, sha = _file(tmp_path, "seg", b"segment bytes")
    calls = _record_requests(s3)
    stored = s3.put_file(
        "seg", path, crc32c=crc, sha256=sha, metadata={"Source": "cdn"}, if_absent=True
    )
    assert calls == ["PutObject"]

    head = s3.stat("seg")
    assert head is not None and stored.updated is not None
    assert _fields(stored) | {"updated": None} == _fields(head) | {"updated": None}
    assert head.updated is not None and abs((stored.updated - head.updated).total_seconds()) < 5


def test_the_crc32c_the_service_checks_is_sent_with_the_bytes_hashed(
    s3: S3Backend, tmp_path: Path
) -> None:
    # A small file goes up from memory: the request must still carry the
    # CRC32C the service checks, and it must be the checksum of the body sent.
    data = os.urandom(300_000)
    path, crc, sha = _file(tmp_path, "seg", data)
    sent: list[tuple[Any, bytes]] = []

    def capture(request: Any, **_: Any) -> None:
        # botocore hands the body over as a file object: read it and rewind it for sending.
        position = request.body.tell()
        body = request.body.read()
        request.body.seek(position)
        sent.append((request.headers.get("x-amz-checksum-crc32c"), body))

    s3.client.meta.events.register("before-send.s3.PutObject", capture)
    s3.put_file("seg", path, crc32c=crc, sha256=sha)
    header, body = sent[-1]
    assert (header.decode() if isinstance(header, bytes) else header) == crc
    assert hash_bytes(body) == (crc, sha)
    head = s3.client.head_object(
        Bucket=s3_target_bucket(s3), Key="archive/seg", ChecksumMode="ENABLED"
    )
    assert head["ChecksumCRC32C"] == crc and head["Metadata"]["sha256"] == sha


def test_a_small_upload_is_sent_without_waiting_for_100_continue(
    s3: S3Backend, tmp_path: Path
) -> None:
    # botocore makes every PutObject wait for the server's "100 Continue" before
    # the body: a round trip per object that a small body does not need.
    path, crc, sha = _file(tmp_path, "seg", os.urandom(300_000))
    expect: list[Any] = []
    s3.client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: expect.append(request.headers.get("Expect")),
    )
    s3.put_file("seg", path, crc32c=crc, sha256=sha, if_absent=True)
    s3.put_bytes("doc.json", b"{}", if_absent=True)
    assert expect == [None, None]
    # The create-only condition is still the server's to decide.
    with pytest.raises(PreconditionFailed):
        s3.put_file("seg", path, crc32c=crc, sha256=sha, if_absent=True)
    stat = s3.stat("seg")
    assert stat is not None and (stat.crc32c, stat.sha256) == (crc, sha)


@pytest.mark.parametrize(
    ("length", "kept"),
    [(SMALL_BODY_MAX, False), (SMALL_BODY_MAX + 1, True), (None, True)],
)
def test_only_a_body_of_known_small_length_skips_100_continue(
    length: int | None, kept: bool
) -> None:
    # A large or streamed body still waits: a refused request then costs no upload.
    headers = {"Expect": "100-continue"}
    if length is not None:
        headers["Content-Length"] = str(length)
    request = AWSPreparedRequest("PUT", "http://s3/b/k", headers, b"", stream_output=False)
    send_small_body_at_once(request)
    assert (request.headers.get("Expect") == "100-continue") is kept


@pytest.mark.parametrize("wrong", ["crc32c", "sha256"])
def test_a_file_unlike_its_checksums_is_refused_before_any_request(
    s3: S3Backend, tmp_path: Path, wrong: str
) -> None:
    path, crc, sha = _file(tmp_path, "seg", b"the bytes on disk")
    first = s3.put_bytes("seg", b"kept")
    other_crc, other_sha = hash_bytes(b"the bytes the caller hashed")
    claimed = {"crc32c": crc, "sha256": sha} | {
        wrong: other_crc if wrong == "crc32c" else other_sha
    }
    calls = _record_requests(s3)
    with pytest.raises(IntegrityError, match="nothing uploaded"):
        s3.put_file("seg", path, if_absent=False, **claimed)
    assert calls == []  # not sent, so nothing to take back either
    stat = s3.stat("seg")
    assert stat is not None and stat.version == first.version


def test_create_race_before_the_put_is_decided_by_the_server(s3: S3Backend, tmp_path: Path) -> None:
    # Another writer lands just before our PUT: the conditional PUT
    # (IfNoneMatch='*', which moto enforces) must lose and keep the rival's bytes.
    ours, crc, sha = _file(tmp_path, "ours", b"our segment")
    rivals: list[str] = []

    def rival_writes_first(**_: Any) -> None:
        if not rivals:  # the rival's own PutObject passes through this hook too
            rivals.append("rival")
            s3.client.put_object(Bucket=s3_target_bucket(s3), Key="archive/seg", Body=b"rival")

    _on_call(s3, "before", "PutObject", rival_writes_first)
    with pytest.raises(PreconditionFailed):
        s3.put_file("seg", ours, crc32c=crc, sha256=sha, if_absent=True)
    assert s3.get_bytes("seg")[0] == b"rival"


def test_multipart_create_only_is_refused_before_uploading_parts(
    s3_target: StorageTarget, backend_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    s3 = backend_factory(
        s3_target.with_options(s3={"multipart_threshold": MiB, "part_size": 5 * MiB})
    )
    s3.put_bytes("seg", b"first")
    big, crc, sha = _file(tmp_path, "big", os.urandom(6 * MiB))
    calls = _record_requests(s3)
    with pytest.raises(PreconditionFailed):
        s3.put_file("seg", big, crc32c=crc, sha256=sha, if_absent=True)
    assert calls == ["HeadObject"]  # not one part sent for an upload bound to be refused
    assert s3.get_bytes("seg")[0] == b"first"


def test_multipart_create_race_is_refused_at_completion(
    s3_target: StorageTarget, backend_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    s3 = backend_factory(
        s3_target.with_options(s3={"multipart_threshold": MiB, "part_size": 5 * MiB})
    )
    big, crc, sha = _file(tmp_path, "big", os.urandom(6 * MiB))

    def rival_writes_after_the_parts(**_: Any) -> None:
        s3.client.put_object(Bucket=s3_target_bucket(s3), Key="archive/seg", Body=b"rival")

    _on_call(s3, "before", "CompleteMultipartUpload", rival_writes_after_the_parts)
    with pytest.raises(PreconditionFailed):
        s3.put_file("seg", big, crc32c=crc, sha256=sha, if_absent=True)
    assert s3.get_bytes("seg")[0] == b"rival"
    uploads = s3.client.list_multipart_uploads(Bucket=s3_target_bucket(s3))
    assert uploads.get("Uploads", []) == []  # the refused upload was aborted


def test_multipart_object_carries_a_full_object_crc32c(
    s3_target: StorageTarget, backend_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    s3 = backend_factory(
        s3_target.with_options(s3={"multipart_threshold": MiB, "part_size": 5 * MiB})
    )
    big, crc, sha = _file(tmp_path, "big", os.urandom(11 * MiB))
    s3.put_file("seg", big, crc32c=crc, sha256=sha)
    head = s3.client.head_object(
        Bucket=s3_target_bucket(s3), Key="archive/seg", ChecksumMode="ENABLED"
    )
    # moto computes FULL_OBJECT checksums from the bytes it assembled, so this
    # is a real server-side confirmation of the whole file.
    assert head["ChecksumType"] == "FULL_OBJECT" and head["ChecksumCRC32C"] == crc
    assert head["ETag"].endswith('-3"')  # three parts of at most 5 MiB
    assert head["Metadata"]["sha256"] == sha


def _put(s3: S3Backend, tmp_path: Path, how: str) -> ObjectStat:
    if how == "put_bytes":
        return s3.put_bytes("seg", b"segment bytes")
    path, crc, sha = _file(tmp_path, "seg", b"segment bytes")
    return s3.put_file("seg", path, crc32c=crc, sha256=sha)


@pytest.mark.parametrize("how", ["put_file", "put_bytes"])
def test_stored_checksum_mismatch_in_the_put_answer_removes_the_object(
    s3: S3Backend, tmp_path: Path, how: str
) -> None:
    # moto stores whatever CRC32C a client claims on PutObject and never
    # rejects a mismatch (real S3 answers BadDigest). To show what happens when
    # a service stored other bytes than we sent, the checksum in its PutObject
    # answer is altered as botocore hands it back.
    def answer_naming_other_bytes(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChecksumCRC32C"] = "AAAAAA=="

    _on_call(s3, "after", "PutObject", answer_naming_other_bytes)
    with pytest.raises(IntegrityError, match="object removed"):
        _put(s3, tmp_path, how)
    _stop_hooks(s3, "after", "PutObject", answer_naming_other_bytes)
    assert s3.stat("seg") is None


def _answer_without_checksum(parsed: dict[str, Any], **_: Any) -> None:
    # Some S3-compatible services name no checksum in their PutObject answer;
    # moto always does, so the checksum is removed from its answer.
    parsed.pop("ChecksumCRC32C", None)


@pytest.mark.parametrize("how", ["put_file", "put_bytes"])
def test_put_answer_without_a_checksum_is_verified_by_reading_back(
    s3: S3Backend, tmp_path: Path, how: str
) -> None:
    _on_call(s3, "after", "PutObject", _answer_without_checksum)
    calls = _record_requests(s3)
    stored = _put(s3, tmp_path, how)
    assert calls == ["PutObject", "HeadObject"]
    assert stored.crc32c == hash_bytes(b"segment bytes")[0] and stored.version is not None


@pytest.mark.parametrize("how", ["put_file", "put_bytes"])
def test_read_back_showing_other_bytes_removes_the_object(
    s3: S3Backend, tmp_path: Path, how: str
) -> None:
    # No checksum in the answer, and the read-back HEAD (moto never rejects a
    # checksum) reports bytes other than ours: both altered as botocore hands them back.
    def head_reporting_other_bytes(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChecksumCRC32C"] = "AAAAAA=="

    _on_call(s3, "after", "PutObject", _answer_without_checksum)
    _on_call(s3, "after", "HeadObject", head_reporting_other_bytes)
    with pytest.raises(IntegrityError, match="object removed"):
        _put(s3, tmp_path, how)
    _stop_hooks(s3, "after", "HeadObject", head_reporting_other_bytes)
    assert s3.stat("seg") is None


def test_listing_pages_lazily_and_omits_checksums(
    s3_target: StorageTarget, backend_factory
) -> None:  # type: ignore[no-untyped-def]
    s3 = backend_factory(s3_target.with_options(s3={"list_page_size": 10}))
    s3_target.seed([f"k/{i:03d}" for i in range(94)])
    s3.put_bytes("k/zzz", b"written through the backend")
    calls: list[str] = []
    s3.client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append("list"))

    listing = s3.list("k/")
    next(listing)
    assert len(calls) == 1  # one page fetched for the first key, not all ten
    rest = list(listing)
    assert len(rest) == 94 and len(calls) == 10
    assert all(item.crc32c is None and item.sha256 is None for item in rest)
    # ListObjectsV2 carries no checksum values; stat (HeadObject) does.
    assert rest[-1].key == "k/zzz" and rest[-1].crc32c is None
    full = s3.stat("k/zzz")
    assert full is not None and full.crc32c is not None and full.sha256 is not None


def test_missing_bucket_is_a_configuration_error(s3_target: StorageTarget) -> None:
    options = s3_target.options
    with (
        open_backend("s3://no-such-bucket-here/archive", options) as backend,
        pytest.raises(BackendConfigError) as caught,
    ):
        backend.put_bytes("k", b"x")
    assert "s3://no-such-bucket-here/archive" in str(caught.value) and "'k'" in str(caught.value)


def test_unreachable_endpoint_is_unavailable_after_sdk_retries(_aws_test_env: None) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = BackendOptions(
        s3=S3Options(
            endpoint_url=f"http://127.0.0.1:{port}",
            region="us-east-1",
            max_attempts=2,
            connect_timeout=1,
        )
    )
    with (
        open_backend("s3://bucket", options) as backend,
        pytest.raises(BackendUnavailable) as caught,
    ):
        backend.stat("k")
    assert "testing" not in str(caught.value)  # the access key never appears


def s3_target_bucket(backend: S3Backend) -> str:
    return backend.url.removeprefix("s3://").split("/")[0]


def _fields(stat: Any) -> dict[str, Any]:
    return {name: getattr(stat, name) for name in stat.__dataclass_fields__}
