"""Multipart uploads for S3: parts with bounded memory, and cleaning uploads killed runs left.

Parts are read in order and uploaded by a small thread pool. At most
``max_concurrency`` parts are in flight plus the one being read, so a transfer
holds at most ``part_size * (max_concurrency + 1)`` bytes.

An upload whose process died is never completed nor aborted: S3 keeps (and
bills) its parts until someone aborts it. :func:`abort_stale_uploads` does,
for uploads under the archive root started before a cutoff.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import Any, BinaryIO

import google_crc32c
from botocore.exceptions import ClientError

from storage_backends.checksums import Hasher, crc32c_b64


def upload_parts(
    client: Any,
    *,
    bucket: str,
    key: str,
    upload_id: str,
    source: BinaryIO,
    part_size: int,
    max_concurrency: int,
    hash_whole: bool = True,
) -> tuple[list[dict[str, Any]], Hasher | None]:
    """Upload ``source`` as parts; return the part list for completion and the whole-file hash.

    ``hash_whole=False`` (a sealed file, its checksums known) skips the whole-file hash.
    """
    # SHA-256 too: S3 checks only the CRC32C, so only this can see the other checksum fail.
    whole = Hasher() if hash_whole else None
    done: list[dict[str, Any]] = []
    pending: set[Future[dict[str, Any]]] = set()
    with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
        try:
            number = 0
            while chunk := source.read(part_size):
                number += 1
                if whole is not None:
                    whole.update(chunk)
                pending.add(
                    pool.submit(_upload_part, client, bucket, key, upload_id, number, chunk)
                )
                del chunk
                if len(pending) >= max_concurrency:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    done.extend(future.result() for future in finished)
            done.extend(future.result() for future in pending)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    done.sort(key=lambda part: part["PartNumber"])
    return done, whole


def _upload_part(
    client: Any, bucket: str, key: str, upload_id: str, number: int, chunk: bytes
) -> dict[str, Any]:
    # S3 checks each part against its own CRC32C on arrival. Only CRC32C: a
    # per-part SHA-256 would cost several times more and nobody could use it.
    part_crc = crc32c_b64(google_crc32c.value(chunk))
    response = client.upload_part(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        PartNumber=number,
        Body=chunk,
        ChecksumAlgorithm="CRC32C",
        ChecksumCRC32C=part_crc,
    )
    return {"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32C": part_crc}


def abort_stale_uploads(client: Any, *, bucket: str, prefix: str, cutoff: datetime) -> int:
    """Abort every incomplete multipart upload under ``prefix`` started at or before ``cutoff``.

    Returns how many were aborted. One another process finished or aborted
    meanwhile is skipped.
    """
    aborted = 0
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", ()):
            if upload["Initiated"] > cutoff:
                continue
            try:
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
                continue
            aborted += 1
    return aborted
