"""Google Cloud Storage backend (google-cloud-storage).

Integrity: the caller's CRC32C is set on the object resource before the upload
(and the client's own checksum disabled so it cannot replace ours), so the
service refuses bytes that do not match. The stored CRC32C is compared again
after the upload; on a mismatch the object is deleted and ``IntegrityError``
raised. Files above ``resumable_threshold`` use a resumable upload in
``chunk_size`` pieces.

Conditional writes use ``if_generation_match`` (0 for create-only). A cheap
stat first also refuses a write that would lose before any bytes are sent.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, BinaryIO, cast

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from storage_backends._streams import CrcReader, TranslatingReader, atomic_output, buffered
from storage_backends.base import Backend, FilePut, ObjectStat, PutRequest
from storage_backends.checksums import Hasher, hash_bytes, hash_file
from storage_backends.errors import IntegrityError, ObjectNotFound, PreconditionFailed, StorageError
from storage_backends.gcs_errors import GCS_ERRORS, translate_gcs_error
from storage_backends.keys import MAX_KEY_BYTES
from storage_backends.options import GCSOptions
from storage_backends.sealed import FileSeal


class _HashingWriter:
    """Hashes what the SDK writes into the destination file."""

    def __init__(self, out: BinaryIO, hasher: Hasher) -> None:
        self._out = out
        self.hasher = hasher

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self._out.write(data)


class GCSBackend(Backend):
    """Objects under ``gs://bucket/prefix``."""

    scheme = "gs"

    def __init__(self, bucket: str, prefix: str, options: GCSOptions | None = None) -> None:
        self._options = options or GCSOptions()
        self._prefix = prefix.strip("/")
        self._url = f"gs://{bucket}/{self._prefix}" if self._prefix else f"gs://{bucket}"
        # google's own retry policy, bounded by our deadline; not re-implemented here.
        self._retry = DEFAULT_RETRY.with_timeout(self._options.retry_deadline)
        try:
            self._client = self._make_client()
        except GCS_ERRORS as exc:
            raise self._error(exc, None, "open") from exc
        self._bucket = self._client.bucket(bucket)

    def _make_client(self) -> storage.Client:
        options = self._options
        if options.endpoint:
            return storage.Client(
                project=options.project or "track-archive",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": options.endpoint},
            )
        if options.credentials_file is not None:
            return storage.Client.from_service_account_json(
                str(options.credentials_file), project=options.project
            )
        return storage.Client(project=options.project)

    @property
    def url(self) -> str:
        return self._url

    @property
    def location(self) -> tuple[str, ...]:
        # An emulator's bucket is not the cloud's bucket of the same name.
        endpoint = self._options.endpoint or "google"
        return ("gs", endpoint, self._bucket.name, *filter(None, self._prefix.split("/")))

    @property
    def client(self) -> storage.Client:
        """The underlying google-cloud-storage client (for diagnostics and tests)."""
        return self._client

    @property
    def options(self) -> GCSOptions:
        """The options this backend was opened with."""
        return self._options

    @property
    def max_key_bytes(self) -> int:
        return MAX_KEY_BYTES - (len(self._prefix.encode()) + 1 if self._prefix else 0)

    def _full(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    def _error(
        self, exc: BaseException, key: str | None, action: str, *, writing: bool = False
    ) -> StorageError:
        return translate_gcs_error(exc, backend=self._url, key=key, action=action, writing=writing)

    def _stat_of(self, key: str, blob: storage.Blob) -> ObjectStat:
        metadata = dict(blob.metadata or {})
        return ObjectStat(
            key=key,
            size=int(blob.size or 0),
            crc32c=blob.crc32c,
            sha256=metadata.get("sha256"),
            version=str(blob.generation) if blob.generation is not None else None,
            updated=blob.updated,
            metadata=metadata,
        )

    def _check_condition(self, key: str, *, if_absent: bool, if_version: str | None) -> None:
        if not if_absent and if_version is None:
            return
        current = self._stat(key)
        if if_absent and current is not None:
            raise PreconditionFailed(
                "create-only write: an object already exists", backend=self._url, key=key
            )
        if if_version is not None and (current is None or current.version != if_version):
            raise PreconditionFailed(
                "compare-and-swap write: the object changed since it was read",
                backend=self._url,
                key=key,
            )

    @staticmethod
    def _generation_match(if_absent: bool, if_version: str | None) -> int | None:
        if if_absent:
            return 0
        if if_version is None:
            return None
        try:
            return int(if_version)
        except ValueError:
            return -1  # not a generation: can never match, the service answers 412

    # -- writes ------------------------------------------------------------------

    def _upload_file(self, put: FilePut, source: BinaryIO | CrcReader, size: int) -> storage.Blob:
        """Upload a file's ``size`` bytes from ``source`` with the caller's checksums on the object.

        The service checks the CRC32C (and MD5 when given); the client's own
        checksum is off, since it would replace ours and read the file again.
        """
        self._check_condition(put.key, if_absent=put.if_absent, if_version=None)
        blob = self._bucket.blob(self._full(put.key), chunk_size=self._options.chunk_size)
        blob.crc32c = put.crc32c
        if put.md5 is not None:
            blob.md5_hash = base64.b64encode(bytes.fromhex(put.md5)).decode("ascii")
        blob.metadata = {**put.metadata, "sha256": put.sha256}
        # Without a size the client always chooses a resumable upload.
        declared = size if size <= self._options.resumable_threshold else None
        try:
            blob.upload_from_file(
                source,
                size=declared,
                content_type=put.content_type,
                checksum=None,
                if_generation_match=self._generation_match(put.if_absent, None),
                retry=self._retry,
                timeout=self._options.timeout,
            )
        except GCS_ERRORS as exc:
            raise self._error(exc, put.key, "put_file", writing=True) from exc
        return blob

    def _put_file(self, path: Path, put: FilePut) -> ObjectStat:
        """Upload ``path`` with the caller's CRC32C on the object for the service to check."""
        key, crc32c, sha256 = put.key, put.crc32c, put.sha256
        size = path.stat().st_size
        with open(path, "rb") as file:
            # The service checks only the CRC32C; the SHA-256 of what was sent is checked below.
            source = CrcReader(file, sha256=True)
            blob = self._upload_file(put, source, size)
        sent_size, sent_sha256 = source.hasher.size, source.hasher.sha256
        if not source.whole_pass:
            # A resumable upload re-sent a chunk: hash the file itself instead.
            _, sent_sha256, sent_size = hash_file(path)
        if sent_size != size or sent_sha256 != sha256:
            with suppress(*GCS_ERRORS):  # only remove the generation we wrote
                blob.delete(if_generation_match=blob.generation, retry=self._retry)
            raise IntegrityError(
                f"sent {sent_size} bytes with SHA-256 {sent_sha256}, caller gave {sha256} "
                f"of {size} bytes; object removed",
                backend=self._url,
                key=key,
            )
        return self._verify_stored(key, blob, size, crc32c)

    def _put_sealed(self, path: Path, sealed: FileSeal, put: FilePut) -> ObjectStat:
        """Upload a sealed file on the checksums given: the service checks CRC32C (and MD5)."""
        with open(path, "rb") as file:
            blob = self._upload_file(put, file, sealed.size)
        if not sealed.holds_for(path):
            with suppress(*GCS_ERRORS):  # changed while read: only remove what we wrote
                blob.delete(if_generation_match=blob.generation, retry=self._retry)
            raise IntegrityError(
                f"file {path} changed while it was uploaded; object removed",
                backend=self._url,
                key=put.key,
            )
        return self._verify_stored(put.key, blob, sealed.size, put.crc32c)

    def _verify_stored(self, key: str, blob: storage.Blob, size: int, crc32c: str) -> ObjectStat:
        stat = self._stat_of(key, blob)
        if stat.crc32c != crc32c or stat.size != size:
            with suppress(*GCS_ERRORS):  # only remove the generation we wrote
                blob.delete(if_generation_match=blob.generation, retry=self._retry)
            raise IntegrityError(
                f"stored object has CRC32C {stat.crc32c} and {stat.size} bytes, "
                f"caller gave {crc32c} and {size}; object removed",
                backend=self._url,
                key=key,
            )
        return stat

    def _put_bytes(self, data: bytes, put: PutRequest) -> ObjectStat:
        """Upload a small document, optionally with ``if_generation_match``."""
        key = put.key
        self._check_condition(key, if_absent=put.if_absent, if_version=put.if_version)
        crc32c, sha256 = hash_bytes(data)
        blob = self._bucket.blob(self._full(key))
        blob.crc32c = crc32c
        blob.metadata = {**put.metadata, "sha256": sha256}
        try:
            blob.upload_from_string(
                data,
                content_type=put.content_type,
                checksum=None,
                if_generation_match=self._generation_match(put.if_absent, put.if_version),
                retry=self._retry,
                timeout=self._options.timeout,
            )
        except GCS_ERRORS as exc:
            raise self._error(exc, key, "put_bytes", writing=True) from exc
        return self._verify_stored(key, blob, len(data), crc32c)

    def _delete(self, key: str) -> None:
        """Delete the object (all of its live generation)."""
        try:
            self._bucket.blob(self._full(key)).delete(
                retry=self._retry, timeout=self._options.timeout
            )
        except GCS_ERRORS as exc:
            raise self._error(exc, key, "delete") from exc

    def _copy_within(
        self, source: Backend, source_key: str, key: str, *, if_absent: bool
    ) -> ObjectStat | None:
        """Server-side rewrite from another ``gs://`` root on the same endpoint."""
        if not isinstance(source, GCSBackend) or source.options.endpoint != self._options.endpoint:
            return None
        src_blob = source._bucket.get_blob(source._full(source_key), retry=self._retry)
        if src_blob is None:
            raise ObjectNotFound("copy source does not exist", backend=source.url, key=source_key)
        self._check_condition(key, if_absent=if_absent, if_version=None)
        dest = self._bucket.blob(self._full(key))
        try:
            token: str | None = None
            while True:
                token, _, _ = dest.rewrite(
                    src_blob,
                    token=token,
                    if_generation_match=self._generation_match(if_absent, None),
                    if_source_generation_match=src_blob.generation,
                    retry=self._retry,
                    timeout=self._options.timeout,
                )
                if token is None:
                    break
        except GCS_ERRORS as exc:
            raise self._error(exc, key, "copy", writing=True) from exc
        return self._verify_stored(key, dest, int(src_blob.size or 0), str(src_blob.crc32c))

    # -- reads -------------------------------------------------------------------

    def _blob(self, key: str, action: str) -> storage.Blob:
        try:
            blob = self._bucket.get_blob(
                self._full(key), retry=self._retry, timeout=self._options.timeout
            )
        except GCS_ERRORS as exc:
            raise self._error(exc, key, action) from exc
        if blob is None:
            raise ObjectNotFound(f"{action}: no such object", backend=self._url, key=key)
        return blob

    def _reader(self, blob: storage.Blob) -> storage.Blob:
        """A blob of the same generation whose download URL the client builds from the name.

        A resource's ``mediaLink`` is the server's word; the emulator's leaves the
        name unescaped, so a key holding ``%2F`` could be stored but never read back.
        """
        return self._bucket.blob(blob.name, generation=blob.generation)

    def _stat(self, key: str) -> ObjectStat | None:
        """Fetch the object resource; ``None`` when absent."""
        try:
            return self._stat_of(key, self._blob(key, "stat"))
        except ObjectNotFound:
            return None

    def _list(self, prefix: str) -> Iterator[ObjectStat]:
        """objects.list page by page; listings carry crc32c and metadata."""
        root = f"{self._prefix}/" if self._prefix else ""
        blobs = self._client.list_blobs(
            self._bucket,
            prefix=root + prefix,
            page_size=self._options.list_page_size,
            retry=self._retry,
            timeout=self._options.timeout,
        )
        try:
            for blob in blobs:
                yield self._stat_of(blob.name[len(root) :], blob)
        except GCS_ERRORS as exc:
            raise self._error(exc, prefix, "list") from exc

    def _open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Stream the current generation in ``chunk_size`` ranged reads."""
        blob = self._blob(key, "open_read")
        try:
            reader = self._reader(blob).open(
                "rb",
                chunk_size=self._options.chunk_size,
                if_generation_match=blob.generation,
                retry=self._retry,
            )
        except GCS_ERRORS as exc:
            raise self._error(exc, key, "open_read") from exc
        raw = TranslatingReader(
            reader.read, reader.close, lambda exc: self._error(exc, key, "read")
        )
        return cast(AbstractContextManager[BinaryIO], buffered(raw))

    def _download(self, blob: storage.Blob, out: BinaryIO, key: str, action: str) -> Hasher:
        stat = self._stat_of(key, blob)
        generation = blob.generation
        writer = _HashingWriter(out, Hasher(sha256=stat.crc32c is None))
        try:
            self._reader(blob).download_to_file(
                writer,
                if_generation_match=generation,
                checksum=None,  # we hash ourselves, against the stored crc32c
                retry=self._retry,
                timeout=self._options.timeout,
            )
        except GCS_ERRORS as exc:
            raise self._error(exc, key, action) from exc
        hasher = writer.hasher
        if hasher.size != stat.size or (stat.crc32c is not None and hasher.crc32c != stat.crc32c):
            raise IntegrityError(
                "bytes read do not match the stored CRC32C", backend=self._url, key=key
            )
        return hasher

    def _get_file(self, key: str, dest: Path) -> ObjectStat:
        """Download to ``dest`` via a temp file, checking size and CRC32C."""
        blob = self._blob(key, "get_file")
        # Taken before the download, which may refresh the blob from response headers.
        stat = self._stat_of(key, blob)
        with atomic_output(dest) as out:
            self._download(blob, out, key, "get_file")
        return stat

    def _get_bytes(self, key: str, *, max_size: int) -> tuple[bytes, ObjectStat]:
        """Read a small object whole, checking its CRC32C."""
        blob = self._blob(key, "get_bytes")
        if int(blob.size or 0) > max_size:
            raise StorageError(
                f"object is {blob.size} bytes, over the {max_size} limit",
                backend=self._url,
                key=key,
            )
        stat = self._stat_of(key, blob)
        buffer = io.BytesIO()
        self._download(blob, cast(BinaryIO, buffer), key, "get_bytes")
        return buffer.getvalue(), stat

    def close(self) -> None:
        """Close the HTTP session."""
        http: Any = getattr(self._client, "_http_internal", None)
        if http is not None:
            http.close()
