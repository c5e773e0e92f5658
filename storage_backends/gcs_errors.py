"""Translate google-cloud-storage, google-auth and transport errors into our tree.

Only the service's status and message are kept; request URLs and headers are
not, so no token or signed parameter can reach a log line.
"""

from __future__ import annotations

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from storage_backends.errors import (
    BackendConfigError,
    BackendUnavailable,
    IntegrityError,
    ObjectNotFound,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
)


def _by_status(
    status: int, detail: str, backend: str, key: str | None, *, writing: bool
) -> StorageError:
    lowered = detail.lower()
    if status == 412:
        return PreconditionFailed(detail, backend=backend, key=key)
    if status == 404:
        # Object names may contain "bucket"; only GCS's own wording marks a missing bucket.
        if writing or "bucket does not exist" in lowered:
            return BackendConfigError(
                detail + " (does the bucket exist?)", backend=backend, key=key
            )
        return ObjectNotFound(detail, backend=backend, key=key)
    if status == 400 and ("crc32c" in lowered or "md5" in lowered):
        return IntegrityError(detail, backend=backend, key=key)
    if status in (401, 403):
        return PermissionDenied(detail, backend=backend, key=key)
    if status in (408, 429) or status >= 500:
        return BackendUnavailable(detail, backend=backend, key=key)
    return StorageError(detail, backend=backend, key=key)


def translate_gcs_error(
    exc: BaseException, *, backend: str, key: str | None, action: str, writing: bool = False
) -> StorageError:
    """Return the ``StorageError`` that best describes a google or transport exception."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, api_exceptions.RetryError):
        return BackendUnavailable(
            f"{action} failed: gave up after retries", backend=backend, key=key
        )
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        detail = f"{action} failed: {exc.code} {exc.message}"
        return _by_status(int(exc.code or 0), detail, backend, key, writing=writing)
    if isinstance(exc, DataCorruption):
        return IntegrityError(
            f"{action} failed: checksum mismatch in transfer", backend=backend, key=key
        )
    if isinstance(exc, InvalidResponse):
        status = int(getattr(getattr(exc, "response", None), "status_code", 0) or 0)
        return _by_status(status, f"{action} failed: HTTP {status}", backend, key, writing=writing)
    if isinstance(exc, auth_exceptions.DefaultCredentialsError):
        return BackendConfigError(
            f"{action} failed: no Google credentials (set GOOGLE_APPLICATION_CREDENTIALS "
            "or GCSOptions.credentials_file)",
            backend=backend,
            key=key,
        )
    if isinstance(exc, auth_exceptions.RefreshError):
        return PermissionDenied(f"{action} failed: credentials refused", backend=backend, key=key)
    if isinstance(
        exc, auth_exceptions.TransportError | requests.ConnectionError | requests.Timeout
    ):
        return BackendUnavailable(
            f"{action} failed: {type(exc).__name__}", backend=backend, key=key
        )
    return StorageError(f"{action} failed: {type(exc).__name__}", backend=backend, key=key)


#: Exceptions the GCS backend translates (everything else is a bug and propagates).
GCS_ERRORS: tuple[type[BaseException], ...] = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    DataCorruption,
    InvalidResponse,
    requests.RequestException,
)
