"""S3 backend (boto3), also for S3-compatible endpoints.

Integrity: every upload carries the caller's whole-file CRC32C so S3 checks
the bytes it received (``ChecksumCRC32C``; multipart uploads use per-part
CRC32C plus a ``FULL_OBJECT`` checksum on completion). Because some
S3-compatible services store a client's checksum without checking it, this
backend also hashes the bytes it hands to botocore and compares the stored
object's checksum after the upload; on a mismatch the object is deleted and
``IntegrityError`` raised. The whole-file SHA-256 is stored as metadata
``sha256``.

Listings come from ListObjectsV2, which carries no checksum values or user
metadata, so ``list`` yields ``crc32c=None`` and ``sha256=None``; ``stat``
has both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage_backends._streams import CrcReader, TranslatingReader, buffered, stream_to_file
from storage_backends.base import DEFAULT_MAX_SMALL_OBJECT, Backend, ObjectStat
from storage_backends.checksums import Hasher, hash_bytes, normalize_crc32c, normalize_sha256
from storage_backends.errors import (
    IntegrityError,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from storage_backends.keys import validate_key, validate_prefix
from storage_backends.options import S3Options
from storage_backends.s3_errors import translate_s3_error
from storage_backends.s3_multipart import upload_parts

#: CopyObject copies at most 5 GiB in one request.
MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024


_SESSIONS: dict[tuple[str | None, str | None], boto3.session.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _new_client(options: S3Options, config: Config) -> Any:
    """A client from a shared session: loading the service model once per process
    makes opening a backend cheap (boto3 sessions are not thread-safe, hence the lock)."""
    with _SESSIONS_LOCK:
        session_key = (options.profile, options.region)
        session = _SESSIONS.get(session_key)
        if session is None:
            session = boto3.session.Session(
                profile_name=options.profile, region_name=options.region
            )
            _SESSIONS[session_key] = session
        return session.client("s3", endpoint_url=options.endpoint_url, config=config)


class S3Backend(Backend):
    """Objects under ``s3://bucket/prefix``."""

    scheme = "s3"

    def __init__(self, bucket: str, prefix: str, options: S3Options | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._options = options or S3Options()
        self._url = f"s3://{bucket}/{self._prefix}" if self._prefix else f"s3://{bucket}"
        config = Config(
            retries={"mode": "standard", "max_attempts": self._options.max_attempts},
            max_pool_connections=max(10, 2 * self._options.max_concurrency),
            connect_timeout=self._options.connect_timeout,
            read_timeout=self._options.read_timeout,
            # We always send our own CRC32C; botocore need not add another.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": self._options.addressing_style}
            if self._options.addressing_style
            else None,
        )
        try:
            # Typed as Any: requests are assembled from optional keyword sets.
            self._client: Any = _new_client(self._options, config)
        except (BotoCoreError, ValueError) as exc:
            raise translate_s3_error(exc, backend=self._url, key=None, action="open") from exc

    @property
    def url(self) -> str:
        return self._url

    @property
    def client(self) -> Any:
        """The underlying boto3 client (for diagnostics and tests)."""
        return self._client

    @property
    def options(self) -> S3Options:
        """The options this backend was opened with."""
        return self._options

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _error(self, exc: Exception, key: str | None, action: str) -> StorageError:
        return translate_s3_error(exc, backend=self._url, key=key, action=action)

    def _stat_from(self, key: str, response: Mapping[str, Any]) -> ObjectStat:
        crc = response.get("ChecksumCRC32C")
        # A COMPOSITE checksum ("xxx-N") covers the parts, not the whole file.
        if crc is not None and (response.get("ChecksumType") == "COMPOSITE" or "-" in crc):
            crc = None
        metadata = dict(response.get("Metadata") or {})
        return ObjectStat(
            key=key,
            size=int(response["ContentLength"]),
            crc32c=crc,
            sha256=metadata.get("sha256"),
            version=response.get("ETag"),
            updated=response.get("LastModified"),
            metadata=metadata,
        )

    def _refuse_existing(self, key: str) -> None:
        # A cheap HEAD first spares uploading a large file only to be refused;
        # the conditional request itself still decides any race.
        if self.stat(key) is not None:
            raise PreconditionFailed(
                "create-only write: an object already exists", backend=self._url, key=key
            )

    # -- writes ------------------------------------------------------------------

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

    def copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool = False
    ) -> ObjectStat | None:
        """CopyObject between buckets on the same endpoint; metadata travels."""
        if (
            not isinstance(source, S3Backend)
            or source.options.endpoint_url != self._options.endpoint_url
        ):
            return None
        src = source.stat(source_key)
        if src is None:
            raise ObjectNotFound("copy source does not exist", backend=source.url, key=source_key)
        if src.size > MAX_SINGLE_COPY:
            return None
        if if_absent:
            self._refuse_existing(key)
        try:
            response = self._client.copy_object(
                Bucket=self._bucket,
                Key=self._full(key),
                CopySource={"Bucket": source._bucket, "Key": source._full(source_key)},
                CopySourceIfMatch=src.version,
                MetadataDirective="COPY",
                ChecksumAlgorithm="CRC32C",
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "copy") from exc
        etag = response["CopyObjectResult"]["ETag"]
        stat = self.stat(key)
        if stat is None or stat.version != etag:
            raise PreconditionFailed(
                "object was replaced right after the copy", backend=self._url, key=key
            )
        if src.crc32c is not None and stat.crc32c is not None and stat.crc32c != src.crc32c:
            self._delete_version(key, etag)
            raise IntegrityError(
                "copy does not match its source; removed", backend=self._url, key=key
            )
        return stat

    # -- reads -------------------------------------------------------------------

    def stat(self, key: str) -> ObjectStat | None:
        """HeadObject with checksums; ``None`` on 404."""
        full = self._full(key)
        try:
            response = self._client.head_object(
                Bucket=self._bucket, Key=full, ChecksumMode="ENABLED"
            )
        except (ClientError, BotoCoreError) as exc:
            error = self._error(exc, key, "stat")
            if isinstance(error, ObjectNotFound):
                return None
            raise error from exc
        return self._stat_from(key, response)

    def list(self, prefix: str = "") -> Iterator[ObjectStat]:
        """ListObjectsV2 page by page; checksums and sha256 are not in listings."""
        validate_prefix(prefix)
        root = f"{self._prefix}/" if self._prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self._bucket,
            Prefix=root + prefix,
            PaginationConfig={"PageSize": self._options.list_page_size},
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield ObjectStat(
                        key=item["Key"][len(root) :],
                        size=int(item["Size"]),
                        version=item.get("ETag"),
                        updated=item.get("LastModified"),
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, prefix, "list") from exc

    def _get(self, key: str, action: str) -> dict[str, Any]:
        try:
            return cast(
                dict[str, Any],
                self._client.get_object(
                    Bucket=self._bucket, Key=self._full(key), ChecksumMode="ENABLED"
                ),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, action) from exc

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """GetObject as a buffered stream; read errors become ``StorageError``."""
        body = self._get(key, "open_read")["Body"]
        raw = TranslatingReader(body.read, body.close, lambda exc: self._error(exc, key, "read"))
        return cast(AbstractContextManager[BinaryIO], buffered(raw))

    def get_file(self, key: str, dest: Path) -> ObjectStat:
        """Download to ``dest`` via a temp file, checking size and CRC32C."""
        response = self._get(key, "get_file")
        stat = self._stat_from(key, response)
        try:
            stream_to_file(response["Body"], dest, stat, url=self._url)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "get_file") from exc
        return stat

    def get_bytes(
        self, key: str, *, max_size: int = DEFAULT_MAX_SMALL_OBJECT
    ) -> tuple[bytes, ObjectStat]:
        """Read a small object whole, checking its CRC32C."""
        response = self._get(key, "get_bytes")
        stat = self._stat_from(key, response)
        body = response["Body"]
        try:
            if stat.size > max_size:
                raise StorageError(
                    f"object is {stat.size} bytes, over the {max_size} limit",
                    backend=self._url,
                    key=key,
                )
            data = body.read()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "get_bytes") from exc
        finally:
            body.close()
        crc, _ = hash_bytes(data)
        if len(data) != stat.size or (stat.crc32c is not None and crc != stat.crc32c):
            raise IntegrityError(
                "bytes read do not match the stored CRC32C", backend=self._url, key=key
            )
        return data, stat

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()
