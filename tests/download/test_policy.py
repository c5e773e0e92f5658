from __future__ import annotations

import pytest

from pipeline.download import DownloadPolicy
from pipeline.errors import ConfigError


def test_defaults_allow_only_the_recording_cdn() -> None:
    policy = DownloadPolicy()
    assert policy.allowed_origins == ("https://cdn.videosdk.live",)
    assert (policy.concurrency, policy.per_host, policy.max_attempts) == (8, 4, 6)
    assert policy.max_size == 8 * 1024**3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("concurrency", 0, "concurrency must be > 0"),
        ("per_host", -1, "per_host must be > 0"),
        ("read_timeout", 0.0, "read_timeout must be > 0"),
        ("deadline", float("inf"), "deadline must be finite"),
        ("max_size", "big", "max_size must be a number"),
        ("backoff_base", -0.1, "backoff_base must be >= 0"),
        ("max_attempts", 2.5, "max_attempts must be a whole number"),
        ("chunk_size", 1024**3, "chunk_size must be at most 64 MiB"),
        ("allowed_origins", (), "allowed_origins must name at least one origin"),
        ("allowed_origins", "https://a.example", "allowed_origins must be a list"),
        ("allowed_origins", ("ftp://a.example",), "scheme must be http or https"),
        ("allowed_origins", ("https://a.example/path",), "give an origin only"),
        ("allowed_origins", ("https://u:p@a.example",), "give an origin only"),
        ("allowed_origins", ("*.com*",), "expected scheme://host[:port] or *.domain"),
        ("private_origins", ("*.example.com",), "must be an exact origin"),
    ],
)
def test_nonsense_values_are_refused_naming_the_field(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        DownloadPolicy(**{field: value})  # type: ignore[arg-type]
    assert message in str(err.value)
    assert f"download.{field}" in str(err.value)


def test_per_host_cannot_exceed_the_global_limit() -> None:
    with pytest.raises(ConfigError, match="per_host"):
        DownloadPolicy(concurrency=2, per_host=3)


def test_lists_from_yaml_become_tuples_and_the_policy_is_frozen() -> None:
    policy = DownloadPolicy(allowed_origins=["https://a.example", "*.b.example"])  # type: ignore[arg-type]
    assert policy.allowed_origins == ("https://a.example", "*.b.example")
    with pytest.raises(AttributeError):
        policy.concurrency = 3  # type: ignore[misc]
