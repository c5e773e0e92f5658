"""Where an S3 archive root is: a bucket and a prefix, and the URL every message names."""

from __future__ import annotations

from dataclasses import dataclass

from storage_backends.errors import StorageError
from storage_backends.s3_errors import translate_s3_error


@dataclass(frozen=True, slots=True)
class S3Root:
    """``s3://bucket/prefix``: maps keys to object names and SDK errors to ours."""

    bucket: str
    #: Without surrounding slashes; empty for a whole bucket.
    prefix: str

    @property
    def url(self) -> str:
        """The root as a URL (no credentials)."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def full(self, key: str) -> str:
        """The object name of ``key`` in the bucket."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def error(self, exc: Exception, key: str | None, action: str) -> StorageError:
        """``exc`` (botocore's) as our own error, naming this root and ``key``."""
        return translate_s3_error(exc, backend=self.url, key=key, action=action)
