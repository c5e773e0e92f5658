"""S3 backend (boto3), also for S3-compatible endpoints: client, reads, listing, copies.

Uploads, conditional puts and deletes are done by the backend's own
``s3_writes.S3Writes``; see there for how every upload is verified.

Listings come from ListObjectsV2, which carries no checksum values or user
metadata, so ``list`` yields ``crc32c=None`` and ``sha256=None``; ``stat``
has both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage_backends._streams import TranslatingReader, buffered, stream_to_file
from storage_backends.base import Backend, FilePut, ObjectStat, PutRequest
from storage_backends.checksums import hash_bytes
from storage_backends.errors import (
    IntegrityError,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from storage_backends.keys import MAX_KEY_BYTES
from storage_backends.options import S3Options
from storage_backends.s3_multipart import abort_stale_uploads
from storage_backends.s3_root import S3Root
from storage_backends.s3_writes import S3Writes, send_small_body_at_once, whole_object_crc32c
from storage_backends.sealed import FileSeal

#: CopyObject copies at most 5 GiB in one request.
MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024

#: One backend is shared by every worker of a job (the sync runs 8, each of which
#: may upload 4 parts at once). A pool smaller than that discards and reopens
#: connections under load; connections open on demand, so idle slots cost nothing.
MIN_POOL_CONNECTIONS = 32


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
        self._root = S3Root(bucket, prefix.strip("/"))
        self._bucket = bucket
        self._prefix = self._root.prefix
        self._options = options or S3Options()
        self._url = self._root.url
        config = Config(
            retries={"mode": "standard", "max_attempts": self._options.max_attempts},
            max_pool_connections=max(MIN_POOL_CONNECTIONS, 2 * self._options.max_concurrency),
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
            raise self._root.error(exc, None, "open") from exc
        self._client.meta.events.register("before-send.s3.PutObject", send_small_body_at_once)
        self._writes = S3Writes(self._client, self._root, self._options, stat=self._stat)

    @property
    def url(self) -> str:
        return self._url

    @property
    def location(self) -> tuple[str, ...]:
        # Buckets of one name on two endpoints (AWS and a MinIO) are different roots.
        endpoint = self._options.endpoint_url or "aws"
        return ("s3", endpoint, self._bucket, *filter(None, self._prefix.split("/")))

    @property
    def client(self) -> Any:
        """The underlying boto3 client (for diagnostics and tests)."""
        return self._client

    @property
    def options(self) -> S3Options:
        """The options this backend was opened with."""
        return self._options

    @property
    def max_key_bytes(self) -> int:
        return MAX_KEY_BYTES - (len(self._prefix.encode()) + 1 if self._prefix else 0)

    def _full(self, key: str) -> str:
        return self._root.full(key)

    def _error(self, exc: Exception, key: str | None, action: str) -> StorageError:
        return self._root.error(exc, key, action)

    def _stat_from(self, key: str, response: Mapping[str, Any]) -> ObjectStat:
        crc = whole_object_crc32c(response)
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

    # -- writes, by the backend's S3Writes ----------------------------------------

    def _put_file(self, path: Path, put: FilePut) -> ObjectStat:
        return self._writes.put_file(path, put)

    def _put_sealed(self, path: Path, sealed: FileSeal, put: FilePut) -> ObjectStat:
        return self._writes.put_sealed(path, sealed, put)

    def _put_bytes(self, data: bytes, put: PutRequest) -> ObjectStat:
        return self._writes.put_bytes(data, put)

    def _delete(self, key: str) -> None:
        self._writes.delete(key)

    def _copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool
    ) -> ObjectStat | None:
        """CopyObject between buckets on the same endpoint; metadata travels."""
        if (
            not isinstance(source, S3Backend)
            or source.options.endpoint_url != self._options.endpoint_url
        ):
            return None
        src = source._stat(source_key)
        if src is None:
            raise ObjectNotFound("copy source does not exist", backend=source.url, key=source_key)
        if src.size > MAX_SINGLE_COPY:
            return None
        if if_absent:
            self._writes.refuse_existing(key)
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
        stat = self._stat(key)
        if stat is None or stat.version != etag:
            raise PreconditionFailed(
                "object was replaced right after the copy", backend=self._url, key=key
            )
        if src.crc32c is not None and stat.crc32c is not None and stat.crc32c != src.crc32c:
            self._writes.delete_version(key, etag)
            raise IntegrityError(
                "copy does not match its source; removed", backend=self._url, key=key
            )
        return stat

    def _clean_leftovers(self, older_than: timedelta | None) -> int:
        """Abort incomplete multipart uploads under the root older than ``older_than``."""
        age = (
            older_than if older_than is not None else timedelta(seconds=self._options.leftover_age)
        )
        root = f"{self._prefix}/" if self._prefix else ""
        try:
            return abort_stale_uploads(
                self._client, bucket=self._bucket, prefix=root, cutoff=datetime.now(UTC) - age
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, None, "clean_leftovers") from exc

    # -- reads -------------------------------------------------------------------

    def _stat(self, key: str) -> ObjectStat | None:
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

    def _list(self, prefix: str) -> Iterator[ObjectStat]:
        """ListObjectsV2 page by page; checksums and sha256 are not in listings."""
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

    def _open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """GetObject as a buffered stream; read errors become ``StorageError``."""
        body = self._get(key, "open_read")["Body"]
        raw = TranslatingReader(body.read, body.close, lambda exc: self._error(exc, key, "read"))
        return cast(AbstractContextManager[BinaryIO], buffered(raw))

    def _get_file(self, key: str, dest: Path) -> ObjectStat:
        """Download to ``dest`` via a temp file, checking size and CRC32C."""
        response = self._get(key, "get_file")
        stat = self._stat_from(key, response)
        try:
            stream_to_file(response["Body"], dest, stat, url=self._url)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "get_file") from exc
        return stat

    def _get_bytes(self, key: str, *, max_size: int) -> tuple[bytes, ObjectStat]:
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
