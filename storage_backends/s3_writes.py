"""S3 writes: verified uploads (single request or multipart) and conditional puts.

Integrity: every upload carries the caller's whole-file CRC32C so S3 checks
the bytes it received (``ChecksumCRC32C``; multipart uploads use per-part
CRC32C plus a ``FULL_OBJECT`` checksum on completion). Because some
S3-compatible services store a client's checksum without checking it, the
bytes handed to botocore are hashed too and the stored object's checksum is
compared after the upload; on a mismatch the object is deleted and
``IntegrityError`` raised. The whole-file SHA-256 is stored as metadata
``sha256``.

``S3Writes`` is mixed into ``S3Backend``, which supplies the client, the key
mapping, error translation and ``stat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from storage_backends._streams import CrcReader
from storage_backends.base import ObjectStat
from storage_backends.checksums import Hasher, hash_bytes, normalize_crc32c, normalize_sha256
from storage_backends.errors import (
    IntegrityError,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from storage_backends.options import S3Options
from storage_backends.s3_errors import translate_s3_error
from storage_backends.s3_multipart import upload_parts


class S3Writes:
    """The writing half of ``S3Backend``: ``put_file``, ``put_bytes`` and ``delete``."""

    _client: Any
    _bucket: str
    _url: str
    _options: S3Options

    if TYPE_CHECKING:  # provided by S3Backend

        def _full(self, key: str) -> str: ...

        def _error(self, exc: Exception, key: str | None, action: str) -> StorageError: ...

        def _refuse_existing(self, key: str) -> None: ...

        def stat(self, key: str) -> ObjectStat | None: ...

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        crc32c: str,
        sha256: str,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectStat:
        """Upload ``path``: one PutObject up to the threshold, multipart above it."""
        full = self._full(key)
        crc32c, sha256 = normalize_crc32c(crc32c), normalize_sha256(sha256)
        size = path.stat().st_size
        if if_absent:
            self._refuse_existing(key)
        extra: dict[str, Any] = {"Metadata": {**(metadata or {}), "sha256": sha256}}
        if content_type:
            extra["ContentType"] = content_type
        if if_absent:
            extra["IfNoneMatch"] = "*"
        with open(path, "rb") as source:
            if size <= self._options.multipart_threshold:
                etag, sent = self._put_single(key, full, source, size, crc32c, extra)
            else:
                etag, sent = self._put_multipart(key, full, source, crc32c, extra)
        return self._verify_stored(key, etag, size, crc32c, sent)

    def _put_single(
        self, key: str, full: str, source: BinaryIO, size: int, crc32c: str, extra: dict[str, Any]
    ) -> tuple[str, Hasher]:
        body = CrcReader(source)
        try:
            response = self._client.put_object(
                Bucket=self._bucket,
                Key=full,
                Body=body,
                ContentLength=size,
                ChecksumAlgorithm="CRC32C",
                ChecksumCRC32C=crc32c,
                **extra,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "put_file") from exc
        return response["ETag"], body.hasher

    def _put_multipart(
        self, key: str, full: str, source: BinaryIO, crc32c: str, extra: dict[str, Any]
    ) -> tuple[str, Hasher]:
        create_args = {k: v for k, v in extra.items() if k != "IfNoneMatch"}
        try:
            upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket,
                Key=full,
                ChecksumAlgorithm="CRC32C",
                ChecksumType="FULL_OBJECT",
                **create_args,
            )["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "put_file") from exc
        try:
            parts, whole = self._upload_parts(full, upload_id, source)
            if whole.crc32c != crc32c:
                # Never complete an upload whose bytes differ from what the caller
                # checksummed: aborting leaves nothing at the key.
                raise IntegrityError(
                    f"file bytes have CRC32C {whole.crc32c}, caller gave {crc32c}",
                    backend=self._url,
                    key=key,
                )
            complete_args: dict[str, Any] = {}
            if "IfNoneMatch" in extra:
                complete_args["IfNoneMatch"] = "*"
            response = self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                ChecksumCRC32C=crc32c,
                ChecksumType="FULL_OBJECT",
                **complete_args,
            )
        except BaseException as exc:
            # On failure here the bucket's lifecycle rule for incomplete uploads is the backstop.
            with suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=full, UploadId=upload_id
                )
            if isinstance(exc, ClientError | BotoCoreError):
                raise self._error(exc, key, "put_file") from exc
            raise
        return response["ETag"], whole

    def _upload_parts(
        self, full: str, upload_id: str, source: BinaryIO
    ) -> tuple[list[dict[str, Any]], Hasher]:
        return upload_parts(
            self._client,
            bucket=self._bucket,
            key=full,
            upload_id=upload_id,
            source=source,
            part_size=self._options.part_size,
            max_concurrency=self._options.max_concurrency,
        )

    def _verify_stored(
        self, key: str, etag: str, size: int, crc32c: str, sent: Hasher
    ) -> ObjectStat:
        stat = self.stat(key)
        mine = stat is not None and stat.version == etag
        stored_crc = stat.crc32c if stat is not None and mine else crc32c
        if (
            sent.crc32c != crc32c
            or sent.size != size
            or stored_crc != crc32c
            or (mine and stat is not None and stat.size != size)
        ):
            self._delete_version(key, etag)
            raise IntegrityError(
                f"stored object does not match: sent CRC32C {sent.crc32c} of {sent.size} bytes, "
                f"stored {stored_crc}, caller gave {crc32c} of {size} bytes; object removed",
                backend=self._url,
                key=key,
            )
        if stat is None or not mine:  # replaced again already by another writer
            raise PreconditionFailed(
                "object was replaced right after this upload", backend=self._url, key=key
            )
        return stat

    def _delete_version(self, key: str, etag: str) -> None:
        try:  # only remove what we wrote, not a newer writer's object
            self._client.delete_object(Bucket=self._bucket, Key=self._full(key), IfMatch=etag)
        except ClientError as exc:
            if translate_s3_error(
                exc, backend=self._url, key=key, action="delete"
            ).__class__ not in (
                PreconditionFailed,
                ObjectNotFound,
            ):
                raise self._error(exc, key, "delete") from exc

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> ObjectStat:
        """PutObject with ``IfNoneMatch='*'`` or ``IfMatch=<etag>`` as asked."""
        if if_absent and if_version is not None:
            raise ValueError("if_absent and if_version are mutually exclusive")
        full = self._full(key)
        crc32c, sha256 = hash_bytes(data)
        meta = {**(metadata or {}), "sha256": sha256}
        conditions: dict[str, str] = {}
        if if_absent:
            conditions["IfNoneMatch"] = "*"
        if if_version is not None:
            conditions["IfMatch"] = if_version
        try:
            response = self._client.put_object(
                Bucket=self._bucket,
                Key=full,
                Body=data,
                ContentType=content_type,
                Metadata=meta,
                ChecksumAlgorithm="CRC32C",
                ChecksumCRC32C=crc32c,
                **conditions,
            )
        except (ClientError, BotoCoreError) as exc:
            error = self._error(exc, key, "put_bytes")
            if isinstance(error, ObjectNotFound) and if_version is not None:
                # S3 answers IfMatch on a missing object with 404: the swap lost.
                raise PreconditionFailed(
                    "compare-and-swap write: the object no longer exists",
                    backend=self._url,
                    key=key,
                ) from exc
            raise error from exc
        stat = self.stat(key)
        if stat is not None and stat.version == response["ETag"]:
            return stat
        return ObjectStat(key, len(data), crc32c, sha256, response["ETag"], None, meta)

    def delete(self, key: str) -> None:
        """Delete the object; S3 itself does not report absence, so stat first."""
        full = self._full(key)
        if self.stat(key) is None:
            raise ObjectNotFound("delete: no such object", backend=self._url, key=key)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=full)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "delete") from exc
