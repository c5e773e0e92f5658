"""Helpers shared by the download tests: fast policies and a digest of a file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipeline.download import DownloadPolicy
from tests.fixtures.origin import Origin


def fast_policy(origin: Origin | None = None, **overrides: Any) -> DownloadPolicy:
    """A policy with tiny backoffs so retries cost milliseconds, allowing ``origin``."""
    settings: dict[str, Any] = {
        "allowed_origins": (origin.base_url,) if origin else ("https://cdn.videosdk.live",),
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "not_found_grace": 1.0,
        "max_retry_time": 10.0,
        "deadline": 20.0,
        "throughput_window": 0.3,
        "min_throughput": 1,
    }
    settings.update(overrides)
    return DownloadPolicy(**settings)


def sha256_of(path: Path) -> str:
    """SHA-256 hex of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
