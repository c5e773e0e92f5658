from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.config import Config, _empty_sections, _problems, load_config
from pipeline.download import DownloadPolicy
from pipeline.errors import ConfigError
from storage_backends import GCSOptions, LocalOptions, S3Options

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_config_is_valid_and_matches_the_defaults(monkeypatch):
    monkeypatch.delenv("VIDEOSDK_TOKEN", raising=False)
    shipped = load_config(ROOT / "config.yaml")
    assert shipped.model_dump(exclude={"download"}) == Config().model_dump(exclude={"download"})
    assert shipped.download == DownloadPolicy()


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
    assert config.download == DownloadPolicy()


def test_backend_sections_are_the_storage_options_themselves(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("backend:\n  s3:\n    part_size: 8388608\n  gcs:\n  local:\n    fsync: false\n")
    config = load_config(path)
    assert config.backend.s3 == S3Options(part_size=8 * 1024 * 1024)
    assert config.backend.gcs == GCSOptions()
    assert config.backend.options().local == LocalOptions(fsync=False)


def test_a_backend_option_is_checked_by_its_own_rule_and_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("backend:\n  s3:\n    part_size: 1024\n")
    with pytest.raises(ConfigError, match=r"backend\.s3: .*part_size must be between 5 MiB"):
        load_config(path)
    path.write_text("backend:\n  gcs:\n    chunksize: 1024\n")
    with pytest.raises(ConfigError, match=r"backend\.gcs\.chunksize: unknown key"):
        load_config(path)


def test_command_line_options_apply_to_the_file_before_it_is_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("backend:\n  url: ./here\ndownload:\n  concurrency: 3\n")
    config = load_config(path, **{"backend.url": "s3://b/p", "download.per_host": None})
    assert (config.backend.url, config.download.concurrency) == ("s3://b/p", 3)
    with pytest.raises(ConfigError, match=r"command-line options: backend\.s3"):
        load_config(path, **{"backend.s3.part_size": 1})


def test_the_download_section_is_the_download_policy_checked_by_its_own_rules(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("download:\n  concurrency: 2\n  allowed_origins: ['https://a.example']\n")
    config = load_config(path)
    # Nothing to convert: the engine takes the section as it is, per_host following concurrency.
    assert config.download == DownloadPolicy(
        concurrency=2, per_host=2, allowed_origins=("https://a.example",)
    )
    path.write_text("download:\n  concurrency: 2\n  per_host: 3\n")
    with pytest.raises(ConfigError, match=r"per_host \(3\) cannot exceed download\.concurrency"):
        load_config(path)
    path.write_text("download:\n  private_origins: ['*.internal.example']\n")
    with pytest.raises(ConfigError, match="must be an exact origin"):
        load_config(path)
    path.write_text("download:\n  concurency: 2\n")
    with pytest.raises(ConfigError, match=r"download\.concurency: unknown key"):
        load_config(path)


#: Files with problems in several sections at once, sections that are not mappings, unknown
#: top-level keys before and after known ones, and the download section's own rules.
BROKEN_FILES = [
    "serve:\n  port: eighty\n  workers: 0\ndownload:\n  concurency: 3\nlog_level: loud\n"
    "extra: 1\nbackend:\n  s3:\n    part_size: 1\n",
    "backend: s3://b\n",
    "download: 5\n",
    "queue:\n  broker: http://x\n  merge_batch: -1\nvideosdk:\n  token: 5\n",
    "zzz:\nstate:\n  journal: 5\n  retry_attempts: 0\naaa: {}\n",
    "download:\n  concurrency: 2\n  per_host: 3\n",
    "backend:\n  gcs:\n    chunksize: 1\n  local:\n  url:\n",
    "log_level: 3\nqueue: [1]\n",
    "download:\n  concurrency: true\n  allowed_origins: x\n",
    "serve:\n  host: [1]\n  verify_signatures: maybe\nstate:\n  quarantine_max_bytes: -1\n",
]


@pytest.mark.parametrize("text", BROKEN_FILES)
def test_each_section_alone_reports_what_the_whole_file_at_once_would(tmp_path, text):
    """Sections are validated one by one (absent ones build nothing): same messages, same order."""
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    with pytest.raises(ValidationError) as whole:
        Config.model_validate(_empty_sections(yaml.safe_load(text), Config))
    assert str(info.value) == f"{path}: " + "; ".join(_problems(whole.value))


def test_problems_in_several_sections_are_all_named_in_the_files_order_of_sections(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BROKEN_FILES[0])
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: backend.s3: S3Options.part_size must be between 5 MiB and 5 GiB (S3's limits), "
        "got 1; download.concurency: unknown key; serve.port: Input should be a valid integer, "
        "unable to parse string as an integer; serve.workers: Input should be greater than 0; "
        "log_level: Input should be 'debug', 'info', 'warning' or 'error'; extra: unknown key"
    )


def test_sections_left_out_are_the_defaults_a_validated_empty_section_gives():
    config = load_config(None, **{"backend.url": "elsewhere"})
    assert config.backend.url == "elsewhere"
    for name in ("state", "serve", "queue", "videosdk"):
        section = getattr(config, name)
        assert section == type(section).model_validate({}), name
    assert config.download == DownloadPolicy()
    assert config == Config.model_validate({"backend": {"url": "elsewhere"}})
