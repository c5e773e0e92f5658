"""What a killed run leaves is cleaned by the next: S3 multipart uploads, and never an object."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.config import Config
from pipeline.run import open_configured_backend
from storage_backends import Backend, hash_bytes
from storage_backends.options import MiB
from tests.fixtures.backends import REGION, StorageTarget

REPO = Path(__file__).resolve().parents[2]

# A run uploading one large segment in 5 MiB parts, one at a time. It is killed
# after a few parts, so its checksums are never compared: any well-formed ones do.
_UPLOADER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from storage_backends import S3Options
    from storage_backends.s3 import S3Backend

    bucket, prefix, endpoint, source, crc, sha = sys.argv[1:]
    five_mib = 5 * 1024 * 1024
    options = S3Options(
        endpoint_url=endpoint,
        region="us-east-1",
        multipart_threshold=five_mib,
        part_size=five_mib,
        max_concurrency=1,
    )
    S3Backend(bucket, prefix, options).put_file(
        "sess/alice/video/seg.webm", Path(source), crc32c=crc, sha256=sha
    )
    """
)


@pytest.fixture
def s3_target(make_storage_target) -> StorageTarget:  # type: ignore[no-untyped-def]
    return make_storage_target("s3")


def _bucket_and_prefix(target: StorageTarget) -> tuple[str, str]:
    bucket, _, prefix = target.url.removeprefix("s3://").partition("/")
    return bucket, prefix


def _uploads(client: Any, bucket: str) -> list[str]:
    return sorted(u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def _config(target: StorageTarget, **s3: object) -> Config:
    return Config().override(
        **{
            "backend.url": target.url,
            "backend.s3.endpoint_url": target.options.s3.endpoint_url,
            "backend.s3.region": REGION,
            **{f"backend.s3.{name}": value for name, value in s3.items()},
        }
    )


def test_an_upload_a_killed_run_left_is_aborted_by_the_next_run(
    s3_target: StorageTarget, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket, prefix = _bucket_and_prefix(s3_target)
    endpoint = s3_target.options.s3.endpoint_url
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    # Someone else's unfinished upload in the same bucket, outside the archive root.
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/big.bin")

    source = tmp_path / "segment.webm"
    with open(source, "wb") as out:
        out.truncate(1024 * MiB)  # sparse: read as zeros, costs no disk
    crc, sha = hash_bytes(b"")
    uploader = subprocess.Popen(
        [sys.executable, "-c", _UPLOADER, bucket, prefix, str(endpoint), str(source), crc, sha],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        parts: list[Any] = []
        while len(parts) < 2:
            assert uploader.poll() is None, "the uploader ended before it could be killed"
            assert time.monotonic() < deadline, "the uploader sent no parts"
            for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                if upload["Key"].startswith(f"{prefix}/"):
                    parts = client.list_parts(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    ).get("Parts", [])
            time.sleep(0.02)
    finally:
        uploader.send_signal(signal.SIGKILL)
        uploader.wait(30)
    ours = f"{prefix}/sess/alice/video/seg.webm"
    assert _uploads(client, bucket) == [ours, "elsewhere/big.bin"]

    # A fresh upload may belong to a live run: the default age (one day) leaves it alone.
    # moto dates every upload 2010-11-10, so the start time the real service reports
    # is put back into ListMultipartUploads' answer, through botocore's own hook.
    def started_just_now(parsed: dict[str, Any], **_: Any) -> None:
        for upload in parsed.get("Uploads", []):
            upload["Initiated"] = datetime.now(UTC) - timedelta(minutes=5)

    with s3_target.open() as backend:
        backend.client.meta.events.register(  # type: ignore[attr-defined]
            "after-call.s3.ListMultipartUploads", started_just_now
        )
        assert backend.clean_leftovers() == 0
        assert backend.clean_leftovers(older_than=timedelta(hours=1)) == 0
    assert _uploads(client, bucket) == [ours, "elsewhere/big.bin"]

    caplog.set_level(logging.INFO, logger="pipeline.run")
    with open_configured_backend(_config(s3_target, leftover_age=0)) as backend:
        assert list(backend.list()) == []
    assert _uploads(client, bucket) == ["elsewhere/big.bin"]  # only the root's upload went
    assert "removed 1 leftover(s) of interrupted writes" in caplog.text
    client.close()


def test_a_failed_cleaning_is_a_warning_and_the_run_goes_on(
    s3_target: StorageTarget, caplog: pytest.LogCaptureFixture
) -> None:
    bucket, _ = _bucket_and_prefix(s3_target)
    client = boto3.client("s3", endpoint_url=s3_target.options.s3.endpoint_url, region_name=REGION)
    client.delete_bucket(Bucket=bucket)  # the listing of uploads now fails: no such bucket
    client.close()

    backend = open_configured_backend(_config(s3_target))
    backend.close()
    assert "could not clean what interrupted writes left in" in caplog.text
    assert bucket in caplog.text


def test_leftover_age_must_not_be_negative(s3_target: StorageTarget) -> None:
    from pipeline.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="leftover_age"):
        _config(s3_target, leftover_age=-1)


def test_cleaning_with_no_age_limit_never_removes_a_finished_object(backend: Backend) -> None:
    backend.put_bytes("sess/manifest.json", b"{}")
    backend.put_bytes("sess/alice/audio/seg.webm", b"x" * 1024, if_absent=True)
    assert backend.clean_leftovers(older_than=timedelta(0)) == 0
    assert [stat.key for stat in backend.list()] == [
        "sess/alice/audio/seg.webm",
        "sess/manifest.json",
    ]
    with pytest.raises(ValueError, match="negative"):
        backend.clean_leftovers(older_than=timedelta(seconds=-1))


def test_the_readmes_lifecycle_rule_is_accepted_by_s3(s3_target: StorageTarget) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("Saved as `lifecycle.json`:\n\n```json\n", 1)[1].split("```", 1)[0]
    rules = json.loads(block)
    bucket, _ = _bucket_and_prefix(s3_target)
    client = boto3.client("s3", endpoint_url=s3_target.options.s3.endpoint_url, region_name=REGION)
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=rules)
    stored = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    client.close()
    assert stored[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
