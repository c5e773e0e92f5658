"""The one exception tree of ``storage_backends``.

::

    StorageError
     ├── InvalidKey            (also ValueError)        a key that may not be stored
     ├── BackendConfigError    (also ValueError)        a bad URL, option or missing SDK
     ├── ObjectNotFound        (also FileNotFoundError) no object at the key
     ├── PreconditionFailed                             create-only or compare-and-swap lost
     ├── IntegrityError        (also ValueError)        the bytes stored are not the bytes sent
     ├── PermissionDenied      (also PermissionError)   credentials refused
     └── BackendUnavailable    (also ConnectionError)   transient: throttled, 5xx, reset,
                                                        after the SDK's own retries

Every error names the backend URL and the key it is about, never a credential.
botocore and google errors are translated to these at the backend's boundary
(``raise ... from exc``) so callers never catch an SDK's exceptions.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error raised by a storage backend."""

    def __init__(self, message: str, *, backend: str | None = None, key: str | None = None):
        self.backend = backend
        self.key = key
        where = ""
        if backend is not None:
            where = f" [{backend}" + (f" key {key!r}" if key is not None else "") + "]"
        elif key is not None:
            where = f" [key {key!r}]"
        super().__init__(message + where)
        self.message = message


class InvalidKey(StorageError, ValueError):
    """The key is not a safe relative object key (see ``keys.validate_key``)."""


class BackendConfigError(StorageError, ValueError):
    """The backend URL or its options are wrong, or its SDK is not installed."""


class ObjectNotFound(StorageError, FileNotFoundError):
    """No object exists at the key."""


class PreconditionFailed(StorageError):
    """A create-only or compare-and-swap write lost: re-read and retry."""


class IntegrityError(StorageError, ValueError):
    """The stored bytes do not match the checksum the caller computed."""


class PermissionDenied(StorageError, PermissionError):
    """The service refused the credentials for this operation."""


class BackendUnavailable(StorageError, ConnectionError):
    """A transient failure that outlived the SDK's own retries."""
