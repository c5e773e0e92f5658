"""``DownloadPolicy``: every limit of the download engine as one validated value object."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from pipeline.errors import ConfigError

DEFAULT_ALLOWED_ORIGINS: tuple[str, ...] = ("https://cdn.videosdk.live",)
GIB = 1024**3
MIB = 1024**2
#: Downloads from one origin at once, unless ``concurrency`` is lower.
DEFAULT_PER_HOST = 4


@dataclass(frozen=True, kw_only=True, slots=True)
class DownloadPolicy:
    """Limits, timeouts and origins for downloading recordings.

    Times are seconds, sizes bytes. ``allowed_origins`` entries are origins
    (``https://host[:port]``) or host patterns (``*.example.com``, https only);
    ``private_origins`` lists exact origins that may resolve to private or
    loopback addresses (an origin whose host is an IP literal already may).
    Cloud metadata addresses are refused whatever either list says.

    The config file's ``download`` section is this object: each option is
    declared, defaulted and checked here only.
    """

    #: Read by pydantic when the config file is validated: an unknown key is an error.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    allowed_origins: tuple[str, ...] = DEFAULT_ALLOWED_ORIGINS
    private_origins: tuple[str, ...] = ()
    concurrency: int = 8
    per_host: int = DEFAULT_PER_HOST
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 3600.0
    min_throughput: int = 16 * 1024
    throughput_window: float = 30.0
    max_attempts: int = 6
    max_retry_time: float = 300.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0
    not_found_grace: float = 60.0
    max_redirects: int = 5
    max_size: int = 8 * GIB
    # Bytes per batch handed to the writer and hashing threads: fewer, larger hand-offs
    # cost less CPU; two batches per download are held at most.
    chunk_size: int = 4 * MIB

    def __post_init__(self) -> None:
        # Lists from YAML become tuples so the policy stays hashable and immutable.
        for name in ("allowed_origins", "private_origins"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"download.{name} must be a list of origin strings")
            object.__setattr__(self, name, tuple(value))
        if not self.allowed_origins:
            raise ConfigError("download.allowed_origins must name at least one origin")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("origins"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"download.{f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"download.{f.name} must be finite, got {value!r}")
        positive = (
            "concurrency",
            "per_host",
            "connect_timeout",
            "read_timeout",
            "deadline",
            "throughput_window",
            "max_attempts",
            "max_retry_time",
            "max_size",
            "chunk_size",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"download.{name} must be > 0, got {getattr(self, name)!r}")
        for name in (
            "min_throughput",
            "backoff_base",
            "backoff_cap",
            "retry_after_cap",
            "not_found_grace",
            "max_redirects",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"download.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in (
            "concurrency",
            "per_host",
            "max_attempts",
            "max_redirects",
            "max_size",
            "chunk_size",
            "min_throughput",
        ):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"download.{name} must be a whole number")
        if self.per_host > self.concurrency:
            raise ConfigError(
                f"download.per_host ({self.per_host}) cannot exceed "
                f"download.concurrency ({self.concurrency})"
            )
        if self.backoff_cap < self.backoff_base:
            raise ConfigError("download.backoff_cap must be >= download.backoff_base")
        if self.chunk_size > 64 * MIB:
            raise ConfigError("download.chunk_size must be at most 64 MiB (memory is per download)")
        # Parse the origins now so a bad entry fails at startup, naming the entry.
        from pipeline.download.origins import parse_origin_rules

        parse_origin_rules(self.allowed_origins, field="allowed_origins")
        for rule in parse_origin_rules(self.private_origins, field="private_origins"):
            if rule.pattern:
                raise ConfigError(
                    f"download.private_origins entry {rule.text!r} must be an exact origin, "
                    "not a host pattern"
                )
