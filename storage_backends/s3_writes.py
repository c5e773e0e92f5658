"""S3 writes: verified uploads (single request or multipart) and conditional puts.

Integrity: every upload carries the caller's whole-file CRC32C so S3 checks
the bytes it received (``ChecksumCRC32C``; multipart uploads use per-part
CRC32C plus a ``FULL_OBJECT`` checksum on completion). Because some
S3-compatible services store a client's checksum without checking it, the
bytes handed to botocore are hashed too and must match the caller's CRC32C.
The service's answer names the checksum it stored; when that differs, the
object we wrote is deleted (only our version, ``IfMatch``) and
``IntegrityError`` raised. Only when the answer names no whole-object
checksum is the stored object read back with a HEAD. The whole-file SHA-256 is
stored as metadata ``sha256``.

A sealed file (``put_file(..., sealed=...)``) is sent as it is, on the checksums
given: the service checks the CRC32C (and the MD5, as ``Content-MD5``, when one
is known) and nothing is hashed here. S3 takes one ``x-amz-checksum-*`` per
request, so the SHA-256 rides as metadata; the seal, checked before and after
the file is read, stands for the local hash.

A file of up to ``IN_MEMORY_MAX`` bytes is read once into memory and hashed
there before anything is sent: a file that does not match the caller's
checksums is refused without a request, and botocore is handed the very
``bytes`` that were hashed. Streamed through a file object instead, each body
was read twice (botocore reads it once to sign the payload over plain HTTP,
then again to send it) and hashed by us on both passes.

A verified upload therefore costs one request up to the multipart threshold.
Its ``ObjectStat`` is built from what the upload itself established; ``updated``
is the service's ``Last-Modified`` when the answer carries one, else this
machine's clock when the answer arrived (S3 does not return the time written).

Create-only single-part puts rely on ``IfNoneMatch='*'`` alone: the service
refuses in that same request. Multipart uploads first look for an existing
object, which spares uploading every part only to be refused at completion.

``S3Backend`` owns one ``S3Writes`` and hands it the client, the root and its
own ``stat``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from storage_backends._streams import CrcReader
from storage_backends.base import FilePut, ObjectStat, PutRequest
from storage_backends.checksums import Hasher, hash_bytes
from storage_backends.errors import (
    IntegrityError,
    ObjectNotFound,
    PreconditionFailed,
)
from storage_backends.options import S3Options
from storage_backends.s3_multipart import upload_parts
from storage_backends.s3_root import S3Root
from storage_backends.sealed import FileSeal


def whole_object_crc32c(response: Mapping[str, Any]) -> str | None:
    """The whole-object CRC32C an S3 answer names, or ``None``.

    A ``COMPOSITE`` checksum (``xxx-N``) covers the parts, not the whole file.
    """
    crc = response.get("ChecksumCRC32C")
    if crc is None or response.get("ChecksumType") == "COMPOSITE" or "-" in crc:
        return None
    return str(crc)


def _written_at(response: Mapping[str, Any]) -> datetime:
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("last-modified")
    if header:
        with suppress(TypeError, ValueError):
            return parsedate_to_datetime(header)
    return datetime.now(UTC)


#: Files up to this size are uploaded from memory (see the module docstring):
#: with a sync's eight workers, at most 64 MiB held at once.
IN_MEMORY_MAX = 8 * 1024 * 1024


#: A PutObject body of up to this many bytes is sent without ``Expect: 100-continue``.
SMALL_BODY_MAX = 2 * 1024 * 1024


def send_small_body_at_once(request: Any, **_: Any) -> None:
    """botocore ``before-send`` hook: a body of up to ``SMALL_BODY_MAX`` goes without waiting.

    botocore asks every PutObject with a body to wait for the server's
    ``100 Continue`` first (``Expect: 100-continue``): one more round trip per
    object, and it reads that interim answer one byte per system call, each
    releasing and retaking the interpreter lock, which eight upload threads then
    hand to each other. Waiting only spares sending a body the service refuses
    anyway (a create-only put that finds its key taken, a bad signature); for a
    body this small that is cheaper than the round trip every put pays (the AWS
    SDK for Go waits only above the same size). The service's verdict is the
    same either way, and the header is not signed.
    """
    headers = request.headers
    if headers.get("Expect") is None:
        return
    try:
        length = int(headers.get("Content-Length"))
    except (TypeError, ValueError):
        return  # length unknown (a streamed body): keep waiting for the server's go-ahead
    if length <= SMALL_BODY_MAX:
        del headers["Expect"]


def _read_whole(path: Path) -> bytes:
    # Unbuffered: readall sizes its one read from fstat and reads to the real end.
    with open(path, "rb", buffering=0) as source:
        return source.read()


class S3Writes:
    """The writing half of ``S3Backend``: verified uploads, conditional puts and deletes.

    Arguments arrive checked (keys, checksums) by ``Backend``'s public methods.
    """

    def __init__(
        self,
        client: Any,
        root: S3Root,
        options: S3Options,
        *,
        stat: Callable[[str], ObjectStat | None],
    ) -> None:
        self._client = client
        self._bucket = root.bucket
        self._url = root.url
        self._options = options
        self._stat = stat
        self._full = root.full
        self._error = root.error

    def refuse_existing(self, key: str) -> None:
        """Raise ``PreconditionFailed`` when ``key`` already holds an object.

        Before a multipart upload or a copy, a cheap HEAD spares sending every
        byte only to be refused at the end; the conditional request still
        decides any race.
        """
        if self._stat(key) is not None:
            raise PreconditionFailed(
                "create-only write: an object already exists", backend=self._url, key=key
            )

    @staticmethod
    def _request(put: PutRequest, sha256: str) -> tuple[dict[str, str], dict[str, Any]]:
        """An upload's stored metadata, and the request fields carrying it and its condition."""
        meta = {**put.metadata, "sha256": sha256}
        extra: dict[str, Any] = {"Metadata": meta}
        if put.content_type:
            extra["ContentType"] = put.content_type
        if put.if_absent:
            extra["IfNoneMatch"] = "*"
        if put.if_version is not None:
            extra["IfMatch"] = put.if_version
        return meta, extra

    def put_file(self, path: Path, put: FilePut) -> ObjectStat:
        """Upload ``path``: one PutObject up to the threshold, multipart above it."""
        key, crc32c, sha256 = put.key, put.crc32c, put.sha256
        full = self._full(key)
        size = path.stat().st_size
        meta, extra = self._request(put, put.sha256)
        if size <= min(IN_MEMORY_MAX, self._options.multipart_threshold):
            return self._put_from_memory(path, put, meta, extra)
        with open(path, "rb") as source:
            if size <= self._options.multipart_threshold:
                response, sent = self._put_single(key, full, source, size, crc32c, extra)
            else:
                if put.if_absent:
                    self.refuse_existing(key)
                response, whole = self._put_multipart(key, full, source, crc32c, sha256, extra)
                assert whole is not None
                sent = whole
        if sent.crc32c != crc32c or sent.size != size or sent.sha256 != sha256:
            self.delete_version(key, response["ETag"])
            raise IntegrityError(
                f"sent {sent.size} bytes with CRC32C {sent.crc32c} and SHA-256 {sent.sha256}, "
                f"caller gave {crc32c} and {sha256} of {size} bytes; object removed",
                backend=self._url,
                key=key,
            )
        return self._confirm_stored(key, response, size, crc32c, meta)

    def _put_from_memory(
        self, path: Path, put: FilePut, meta: dict[str, str], extra: dict[str, Any]
    ) -> ObjectStat:
        """Read, hash and check a small file, then send those same bytes in one PutObject."""
        data = _read_whole(path)
        crc32c, sha256 = hash_bytes(data)
        if (crc32c, sha256) != (put.crc32c, put.sha256):
            raise IntegrityError(
                f"file {path} ({len(data)} bytes) has CRC32C {crc32c} and SHA-256 {sha256}, "
                f"caller gave {put.crc32c} and {put.sha256}; nothing uploaded",
                backend=self._url,
                key=put.key,
            )
        response = self._put_object(
            put.key,
            "put_file",
            Key=self._full(put.key),
            Body=data,
            ChecksumAlgorithm="CRC32C",
            ChecksumCRC32C=crc32c,
            **extra,
        )
        return self._confirm_stored(put.key, response, len(data), crc32c, meta)

    def put_sealed(self, path: Path, sealed: FileSeal, put: FilePut) -> ObjectStat:
        """Upload a sealed file on the checksums given; the service checks them, not we."""
        key = put.key
        full = self._full(key)
        meta, extra = self._request(put, put.sha256)
        with open(path, "rb") as source:
            if sealed.size <= self._options.multipart_threshold:
                if put.md5 is not None:
                    extra["ContentMD5"] = base64.b64encode(bytes.fromhex(put.md5)).decode("ascii")
                response = self._put_object(
                    key,
                    "put_file",
                    Key=full,
                    Body=source,
                    ContentLength=sealed.size,
                    ChecksumAlgorithm="CRC32C",
                    ChecksumCRC32C=put.crc32c,
                    **extra,
                )
            else:
                if put.if_absent:
                    self.refuse_existing(key)
                response, _ = self._put_multipart(
                    key, full, source, put.crc32c, put.sha256, extra, hash_whole=False
                )
        if not sealed.holds_for(path):
            # Changed while it was read: what was sent is proved by nothing.
            self.delete_version(key, response["ETag"])
            raise IntegrityError(
                f"file {path} changed while it was uploaded; object removed",
                backend=self._url,
                key=key,
            )
        return self._confirm_stored(key, response, sealed.size, put.crc32c, meta)

    def _put_object(self, key: str, action: str, **request: Any) -> dict[str, Any]:
        """One PutObject; every single-request write goes through here."""
        try:
            response: dict[str, Any] = self._client.put_object(Bucket=self._bucket, **request)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, action) from exc
        return response

    def _put_single(
        self, key: str, full: str, source: BinaryIO, size: int, crc32c: str, extra: dict[str, Any]
    ) -> tuple[dict[str, Any], Hasher]:
        body = CrcReader(source, sha256=True)
        response = self._put_object(
            key,
            "put_file",
            Key=full,
            Body=body,
            ContentLength=size,
            ChecksumAlgorithm="CRC32C",
            ChecksumCRC32C=crc32c,
            **extra,
        )
        return response, body.hasher

    def _put_multipart(
        self,
        key: str,
        full: str,
        source: BinaryIO,
        crc32c: str,
        sha256: str,
        extra: dict[str, Any],
        *,
        hash_whole: bool = True,
    ) -> tuple[dict[str, Any], Hasher | None]:
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
            parts, whole = self._upload_parts(full, upload_id, source, hash_whole=hash_whole)
            if whole is not None and (whole.crc32c != crc32c or whole.sha256 != sha256):
                # Never complete an upload whose bytes differ from what the caller
                # checksummed: aborting leaves nothing at the key.
                raise IntegrityError(
                    f"file bytes have CRC32C {whole.crc32c} and SHA-256 {whole.sha256}, "
                    f"caller gave {crc32c} and {sha256}",
                    backend=self._url,
                    key=key,
                )
            complete_args: dict[str, Any] = {}
            if "IfNoneMatch" in extra:
                complete_args["IfNoneMatch"] = "*"
            response: dict[str, Any] = self._client.complete_multipart_upload(
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
        return response, whole

    def _upload_parts(
        self, full: str, upload_id: str, source: BinaryIO, *, hash_whole: bool
    ) -> tuple[list[dict[str, Any]], Hasher | None]:
        return upload_parts(
            self._client,
            bucket=self._bucket,
            key=full,
            upload_id=upload_id,
            source=source,
            part_size=self._options.part_size,
            max_concurrency=self._options.max_concurrency,
            hash_whole=hash_whole,
        )

    def _confirm_stored(
        self,
        key: str,
        response: Mapping[str, Any],
        size: int,
        crc32c: str,
        metadata: Mapping[str, str],
    ) -> ObjectStat:
        """Check the checksum the service says it stored; describe the object we wrote."""
        etag = str(response["ETag"])
        stored = whole_object_crc32c(response)
        if stored is None:
            # The answer does not say what was stored: read it back.
            return self._verify_stored(key, etag, size, crc32c)
        if stored != crc32c:
            self.delete_version(key, etag)
            raise IntegrityError(
                f"service stored CRC32C {stored}, caller gave {crc32c}; object removed",
                backend=self._url,
                key=key,
            )
        return ObjectStat(
            key=key,
            size=size,
            crc32c=crc32c,
            sha256=metadata.get("sha256"),
            version=etag,
            updated=_written_at(response),
            # S3 keeps user metadata names in lower case; say what a stat would.
            metadata={name.lower(): value for name, value in metadata.items()},
        )

    def _verify_stored(self, key: str, etag: str, size: int, crc32c: str) -> ObjectStat:
        stat = self._stat(key)
        if stat is None or stat.version != etag:  # replaced again already by another writer
            raise PreconditionFailed(
                "object was replaced right after this upload", backend=self._url, key=key
            )
        if stat.size != size or (stat.crc32c is not None and stat.crc32c != crc32c):
            self.delete_version(key, etag)
            raise IntegrityError(
                f"stored object has CRC32C {stat.crc32c} of {stat.size} bytes, "
                f"caller gave {crc32c} of {size} bytes; object removed",
                backend=self._url,
                key=key,
            )
        return stat

    def delete_version(self, key: str, etag: str) -> None:
        """Delete ``key`` only while it is still the version ``etag`` (what this process wrote)."""
        try:  # only remove what we wrote, not a newer writer's object
            self._client.delete_object(Bucket=self._bucket, Key=self._full(key), IfMatch=etag)
        except ClientError as exc:
            error = self._error(exc, key, "delete")
            if type(error) not in (PreconditionFailed, ObjectNotFound):
                raise error from exc

    def put_bytes(self, data: bytes, put: PutRequest) -> ObjectStat:
        """PutObject with ``IfNoneMatch='*'`` or ``IfMatch=<etag>`` as asked."""
        key, if_version = put.key, put.if_version
        full = self._full(key)
        crc32c, sha256 = hash_bytes(data)
        meta, extra = self._request(put, sha256)
        try:
            response = self._put_object(
                key,
                "put_bytes",
                Key=full,
                Body=data,
                ChecksumAlgorithm="CRC32C",
                ChecksumCRC32C=crc32c,
                **extra,
            )
        except ObjectNotFound as exc:
            if if_version is None:
                raise
            # S3 answers IfMatch on a missing object with 404: the swap lost.
            raise PreconditionFailed(
                "compare-and-swap write: the object no longer exists",
                backend=self._url,
                key=key,
            ) from exc
        return self._confirm_stored(key, response, len(data), crc32c, meta)

    def delete(self, key: str) -> None:
        """Delete the object; S3 itself does not report absence, so stat first."""
        full = self._full(key)
        if self._stat(key) is None:
            raise ObjectNotFound("delete: no such object", backend=self._url, key=key)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=full)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key, "delete") from exc
