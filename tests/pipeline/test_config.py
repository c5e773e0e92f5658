from pathlib import Path

import pytest

from pipeline.config import Config, load_config
from pipeline.download import DownloadPolicy
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_config_is_valid_and_matches_the_defaults(monkeypatch):
    monkeypatch.delenv("VIDEOSDK_TOKEN", raising=False)
    shipped = load_config(ROOT / "config.yaml")
    assert shipped.model_dump(exclude={"download"}) == Config().model_dump(exclude={"download"})
    assert DownloadPolicy(**shipped.download.given()) == DownloadPolicy()


def test_unknown_and_mistyped_keys_are_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("download:\n  concurency: 3\nserve:\n  port: eighty\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "download.concurency: unknown key" in str(info.value)
    assert "serve.port" in str(info.value)


def test_environment_variables_are_interpolated_and_missing_ones_named(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("videosdk:\n  token: ${MY_TOKEN}\n")
    monkeypatch.setenv("MY_TOKEN", "secret-value")
    assert load_config(path).videosdk.token == "secret-value"
    monkeypatch.delenv("MY_TOKEN")
    with pytest.raises(ConfigError, match="MY_TOKEN is not set"):
        load_config(path)


def test_command_line_overrides_win_and_none_leaves_the_file_value():
    config = Config().override(**{"backend.url": "s3://b/p", "download.concurrency": None})
    assert config.backend.url == "s3://b/p"
    assert config.download.concurrency is None
