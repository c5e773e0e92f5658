"""One verified, streaming storage contract over local disk, S3 and GCS.

Open a backend from a URL and talk to it through ``Backend``::

    from storage_backends import open_backend

    with open_backend("s3://bucket/archive") as backend:
        backend.put_file("sess/part/audio/a.webm", path, crc32c=crc, sha256=sha)

The SDKs (boto3, google-cloud-storage) are imported only when their backend is
opened; callers never import them or catch their exceptions.
"""

from storage_backends.base import (
    DEFAULT_MAX_SMALL_OBJECT,
    Backend,
    FilePut,
    ObjectStat,
    PutRequest,
    roots_overlap,
)
from storage_backends.checksums import (
    Hasher,
    crc32c_b64,
    crc32c_value,
    hash_bytes,
    hash_file,
    normalize_crc32c,
    normalize_sha256,
)
from storage_backends.errors import (
    BackendConfigError,
    BackendUnavailable,
    IntegrityError,
    InvalidKey,
    ObjectNotFound,
    PermissionDenied,
    PreconditionFailed,
    StorageError,
)
from storage_backends.keys import MAX_KEY_BYTES, join_key, validate_key, validate_prefix
from storage_backends.options import BackendOptions, GCSOptions, LocalOptions, S3Options
from storage_backends.registry import open_backend, register_backend, split_url

__all__ = [
    "DEFAULT_MAX_SMALL_OBJECT",
    "MAX_KEY_BYTES",
    "Backend",
    "BackendConfigError",
    "BackendOptions",
    "BackendUnavailable",
    "FilePut",
    "GCSOptions",
    "Hasher",
    "IntegrityError",
    "InvalidKey",
    "LocalOptions",
    "ObjectNotFound",
    "ObjectStat",
    "PermissionDenied",
    "PreconditionFailed",
    "PutRequest",
    "S3Options",
    "StorageError",
    "crc32c_b64",
    "crc32c_value",
    "hash_bytes",
    "hash_file",
    "join_key",
    "normalize_crc32c",
    "normalize_sha256",
    "open_backend",
    "register_backend",
    "roots_overlap",
    "split_url",
    "validate_key",
    "validate_prefix",
]
