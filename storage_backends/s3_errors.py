"""Translate botocore errors into the package's exception tree.

Only the error code and the service's message are kept: botocore errors can
carry request details (for ``SignatureDoesNotMatch``, the string that was
signed), which never belong in a log line.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from storage_backends.errors import (
    BackendConfigError,
    BackendUnavailable,
    IntegrityError,
    ObjectNotFound,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
)

_NOT_FOUND = {"NoSuchKey", "NotFound", "404", "NoSuchUpload"}
_NO_BUCKET = {"NoSuchBucket"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_INTEGRITY = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "InvalidChecksum"}
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}


def translate_s3_error(
    exc: Exception, *, backend: str, key: str | None, action: str
) -> StorageError:
    """Return the ``StorageError`` that best describes a botocore exception."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        detail = f"{action} failed: {code or status} {error.get('Message', '')}".rstrip()
        if code in _PRECONDITION or status == 412:
            return PreconditionFailed(detail, backend=backend, key=key)
        if code in _NO_BUCKET:
            return BackendConfigError(detail, backend=backend, key=key)
        if code in _NOT_FOUND or status == 404:
            return ObjectNotFound(detail, backend=backend, key=key)
        if code in _INTEGRITY or (code == "InvalidRequest" and "checksum" in detail.lower()):
            return IntegrityError(detail, backend=backend, key=key)
        if code in _DENIED or status in (401, 403):
            return PermissionDenied(detail, backend=backend, key=key)
        if code in _TRANSIENT or status >= 500 or status == 429:
            return BackendUnavailable(detail, backend=backend, key=key)
        return StorageError(detail, backend=backend, key=key)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return BackendConfigError(
            f"{action} failed: {type(exc).__name__} (check AWS_* variables or the profile)",
            backend=backend,
            key=key,
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError | ResponseStreamingError):
        return BackendUnavailable(
            f"{action} failed: {type(exc).__name__} after retries", backend=backend, key=key
        )
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{action} failed: {type(exc).__name__}", backend=backend, key=key)
    if isinstance(exc, OSError):
        return BackendUnavailable(f"{action} failed: {exc}", backend=backend, key=key)
    return StorageError(f"{action} failed: {type(exc).__name__}: {exc}", backend=backend, key=key)
