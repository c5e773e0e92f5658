"""Backend options: small, frozen, keyword-only value objects checked at construction.

Credentials never appear here: S3 takes them from the standard ``AWS_*``
variables or a named profile, GCS from ``GOOGLE_APPLICATION_CREDENTIALS``, a
service-account file or the ambient environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from storage_backends.errors import BackendConfigError

MiB = 1024 * 1024
GiB = 1024 * MiB

#: S3 refuses parts under 5 MiB (except the last) and over 5 GiB.
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * GiB
#: GCS resumable chunks must be a multiple of 256 KiB.
GCS_CHUNK_MULTIPLE = 256 * 1024

DEFAULT_MULTIPART_THRESHOLD = 64 * MiB
DEFAULT_PART_SIZE = 16 * MiB
DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_LIST_PAGE_SIZE = 1000
DEFAULT_GCS_CHUNK_SIZE = 16 * MiB
DEFAULT_GCS_RESUMABLE_THRESHOLD = 8 * MiB
DEFAULT_GCS_RETRY_DEADLINE = 300.0
DEFAULT_TIMEOUT = 60.0
#: A run cleans a multipart upload older than this; none takes a day.
DEFAULT_S3_LEFTOVER_AGE = 24 * 3600.0
#: A run cleans an unlocked local temp file older than this.
DEFAULT_LOCAL_LEFTOVER_AGE = 15 * 60.0


#: Read by pydantic when a config file is validated into these options: an unknown key is an
#: error naming it (plain Python use needs no pydantic).
_STRICT_KEYS: dict[str, Any] = {"extra": "forbid"}


def _positive(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not value > 0:
        raise BackendConfigError(f"{owner}.{name} must be positive, got {value!r}")


def _not_negative(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise BackendConfigError(f"{owner}.{name} must be zero or more, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class S3Options:
    """How to reach S3 and how big the transfers are.

    ``endpoint_url`` is for S3-compatible services and test servers; when it is
    ``None`` boto3 also honours ``AWS_ENDPOINT_URL``. A transfer holds at most
    ``part_size * (max_concurrency + 1)`` bytes in memory.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT_KEYS

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    part_size: int = DEFAULT_PART_SIZE
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    #: Total attempts per request in botocore's "standard" retry mode.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    addressing_style: Literal["auto", "virtual", "path"] | None = None
    list_page_size: int = DEFAULT_LIST_PAGE_SIZE
    connect_timeout: float = DEFAULT_TIMEOUT
    read_timeout: float = DEFAULT_TIMEOUT
    #: Seconds after which a run aborts an incomplete multipart upload under the root
    #: (one a killed run left); 0 aborts every one, so only when no other run is writing.
    leftover_age: float = DEFAULT_S3_LEFTOVER_AGE

    def __post_init__(self) -> None:
        _not_negative("S3Options", "leftover_age", self.leftover_age)
        for name in (
            "multipart_threshold",
            "part_size",
            "max_concurrency",
            "max_attempts",
            "list_page_size",
            "connect_timeout",
            "read_timeout",
        ):
            _positive("S3Options", name, getattr(self, name))
        if not S3_MIN_PART_SIZE <= self.part_size <= S3_MAX_PART_SIZE:
            raise BackendConfigError(
                f"S3Options.part_size must be between 5 MiB and 5 GiB (S3's limits), "
                f"got {self.part_size}"
            )
        if self.list_page_size > 1000:
            raise BackendConfigError("S3Options.list_page_size cannot exceed 1000 (S3's limit)")
        if self.addressing_style not in (None, "auto", "virtual", "path"):
            raise BackendConfigError(
                f"S3Options.addressing_style must be auto, virtual or path, "
                f"got {self.addressing_style!r}"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class GCSOptions:
    """How to reach Google Cloud Storage and how big the transfers are.

    ``endpoint`` (with scheme, e.g. ``http://127.0.0.1:9023``) points at an
    emulator and switches to anonymous credentials, as ``STORAGE_EMULATOR_HOST``
    does. Files above ``resumable_threshold`` go up as resumable uploads in
    ``chunk_size`` pieces, so one transfer holds about ``chunk_size`` in memory.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT_KEYS

    project: str | None = None
    credentials_file: Path | None = None
    endpoint: str | None = None
    chunk_size: int = DEFAULT_GCS_CHUNK_SIZE
    resumable_threshold: int = DEFAULT_GCS_RESUMABLE_THRESHOLD
    #: Seconds google's own ``Retry`` keeps retrying transient errors.
    retry_deadline: float = DEFAULT_GCS_RETRY_DEADLINE
    list_page_size: int = DEFAULT_LIST_PAGE_SIZE
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("chunk_size", "resumable_threshold", "retry_deadline", "list_page_size"):
            _positive("GCSOptions", name, getattr(self, name))
        _positive("GCSOptions", "timeout", self.timeout)
        if self.chunk_size % GCS_CHUNK_MULTIPLE:
            raise BackendConfigError(
                f"GCSOptions.chunk_size must be a multiple of 256 KiB, got {self.chunk_size}"
            )
        if self.credentials_file is not None and not isinstance(self.credentials_file, Path):
            object.__setattr__(self, "credentials_file", Path(self.credentials_file))
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise BackendConfigError(
                f"GCSOptions.endpoint needs a scheme (http:// or https://), got {self.endpoint!r}"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalOptions:
    """Local-disk behaviour. ``fsync=False`` trades durability for speed (tests only)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _STRICT_KEYS

    fsync: bool = True
    #: Seconds after which a run removes a temp file that no live process holds (one a
    #: killed run left where the filesystem cannot make nameless temp files).
    leftover_age: float = DEFAULT_LOCAL_LEFTOVER_AGE

    def __post_init__(self) -> None:
        _not_negative("LocalOptions", "leftover_age", self.leftover_age)


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendOptions:
    """Options for every backend kind; ``open_backend`` picks the one its URL needs."""

    s3: S3Options = field(default_factory=S3Options)
    gcs: GCSOptions = field(default_factory=GCSOptions)
    local: LocalOptions = field(default_factory=LocalOptions)

    def __post_init__(self) -> None:
        for name, kind in (("s3", S3Options), ("gcs", GCSOptions), ("local", LocalOptions)):
            if not isinstance(getattr(self, name), kind):
                raise BackendConfigError(f"BackendOptions.{name} must be a {kind.__name__}")
