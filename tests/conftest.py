"""Shared fixtures: each real server lives in its own plugin module under ``tests/fixtures``."""

pytest_plugins = [
    "tests.fixtures.backends",
    "tests.fixtures.brokers",
    "tests.fixtures.media",
    "tests.fixtures.origin",
]
