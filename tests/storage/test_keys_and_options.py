"""Key validation, checksum helpers, options and backend URLs."""

from __future__ import annotations

import base64
import builtins
import hashlib
import sys
from pathlib import Path

import google_crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage_backends import (
    BackendConfigError,
    BackendOptions,
    GCSOptions,
    Hasher,
    InvalidKey,
    S3Options,
    crc32c_b64,
    crc32c_value,
    hash_file,
    join_key,
    open_backend,
    split_url,
    validate_key,
)
from storage_backends.local import LocalBackend

safe_segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/\\\x7f#?*"),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", "..") and not s.startswith(".track-archive"))


@given(st.lists(safe_segment, min_size=1, max_size=6))
def test_keys_built_from_safe_segments_are_accepted_unchanged(segments: list[str]) -> None:
    key = "/".join(segments)
    if len(key.encode()) <= 1024:
        assert validate_key(key) == key
        assert join_key(*segments) == key


@given(
    st.lists(safe_segment, max_size=3),
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "a\x00b",
            "a\nb",
            "x\\y",
            "c\x1fd",
            "e\x85f",
            "a#1",
            "*",
            "x?",
            ".track-archive-locks",
            ".track-archive-tmp-0",
            "n" * 256,
        ]
    ),
    st.lists(safe_segment, max_size=3),
)
def test_any_key_with_an_unsafe_segment_is_refused(
    before: list[str], bad: str, after: list[str]
) -> None:
    with pytest.raises(InvalidKey):
        validate_key("/".join([*before, bad, *after]))


@given(st.text(max_size=40))
def test_validation_never_accepts_absolute_dotted_or_control_keys(key: str) -> None:
    try:
        validate_key(key)
    except InvalidKey:
        return
    segments = key.split("/")
    assert key and not key.startswith("/") and "\\" not in key
    assert all(seg not in ("", ".", "..") for seg in segments)
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in key)


def test_key_length_limits_are_in_utf8_bytes() -> None:
    assert validate_key("/".join(["é" * 127] * 4) + "/abcd")  # 1024 bytes
    with pytest.raises(InvalidKey):
        validate_key("/".join(["é" * 127] * 4) + "/abcde")
    assert validate_key("é" * 127 + "x")  # a 255-byte file name
    with pytest.raises(InvalidKey, match="longer than 255 bytes"):
        validate_key("é" * 128)


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_hasher_matches_one_shot_hashes_whatever_the_chunking(data: bytes, step: int) -> None:
    hasher = Hasher()
    for start in range(0, len(data), step):
        hasher.update(memoryview(data)[start : start + step])
    assert hasher.sha256 == hashlib.sha256(data).hexdigest()
    assert hasher.crc32c == base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    assert crc32c_value(hasher.crc32c) == google_crc32c.value(data)
    assert hasher.size == len(data)


def test_crc32c_encoding_is_base64_big_endian_like_s3_and_gcs() -> None:
    # The CRC32C check value from RFC 3720 for "123456789" is 0xE3069283.
    assert (
        crc32c_b64(google_crc32c.value(b"123456789"))
        == base64.b64encode(bytes.fromhex("e3069283")).decode()
    )


def test_hash_file_streams_and_reports_size(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1_000_000)
    crc, sha, size = hash_file(path, chunk_size=65536)
    assert size == 3_000_000 and sha == hashlib.sha256(b"abc" * 1_000_000).hexdigest()
    assert crc == crc32c_b64(google_crc32c.value(b"abc" * 1_000_000))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: S3Options(part_size=0), "part_size must be positive"),
        (lambda: S3Options(max_concurrency=-1), "max_concurrency must be positive"),
        (lambda: S3Options(part_size=1024), "between 5 MiB and 5 GiB"),
        (lambda: S3Options(max_attempts=0), "max_attempts must be positive"),
        (lambda: S3Options(list_page_size=5000), "cannot exceed 1000"),
        (lambda: GCSOptions(chunk_size=1000), "multiple of 256 KiB"),
        (lambda: GCSOptions(retry_deadline=0), "retry_deadline must be positive"),
        (lambda: GCSOptions(endpoint="localhost:9023"), "needs a scheme"),
    ],
)
def test_bad_options_are_refused_at_construction(factory, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendConfigError, match=message):
        factory()


def test_options_are_frozen_and_keyword_only() -> None:
    options = S3Options(part_size=8 * 1024 * 1024)
    with pytest.raises(AttributeError):
        options.part_size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        S3Options("http://endpoint")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("s3", "bucket", "")),
        ("s3://bucket/archive/root/", ("s3", "bucket", "archive/root")),
        ("gs://bucket/rec", ("gs", "bucket", "rec")),
        ("file:///srv/archive", ("file", "/srv/archive", "")),
    ],
)
def test_urls_split_into_bucket_and_prefix(url: str, expected: tuple[str, str, str]) -> None:
    assert split_url(url) == expected


def test_plain_path_opens_a_local_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = open_backend("archive")
    assert isinstance(backend, LocalBackend)
    assert backend.root == tmp_path / "archive" and backend.root.is_dir()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/x",
        "s3://",
        "s3://bucket/a/../b",
        "s3://key:secret@bucket/x",
        "gs://bucket/x?y=1",
        "file://host/x",
    ],
)
def test_bad_urls_are_configuration_errors_without_credentials(url: str) -> None:
    with pytest.raises(BackendConfigError) as caught:
        open_backend(url, BackendOptions())
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(("url", "extra"), [("s3://bucket", "s3"), ("gs://bucket", "gcs")])
def test_missing_sdk_names_the_pip_install_when_the_backend_is_opened(
    url: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate an install without the extra: importing the SDK fails.
    for name in list(sys.modules):
        if name.startswith(
            ("storage_backends.s3", "storage_backends.gcs", "boto3", "google.cloud.storage")
        ):
            monkeypatch.delitem(sys.modules, name)
    real_import = builtins.__import__

    def refuse_sdk(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith(("boto3", "google.cloud")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_sdk)
    with pytest.raises(BackendConfigError, match=rf"pip install 'track-archive\[{extra}\]'"):
        open_backend(url)
