"""A sync whose roots overlap is refused before anything is copied.

Copying a root into a folder of itself copies the copy again on every run (the
archive grows without end), and with ``--delete`` each side's listing names the
other's objects. The roots are compared where they really live: a local path
through its symlinks, an S3 or GCS prefix by its bucket and endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.sync import sync
from storage_backends import Backend, open_backend, roots_overlap
from tests.fixtures.backends import StorageTarget

from .builders import build_session, contents

LAYOUT = {("alice", "audio"): 2, ("bob", "video"): 1}


def _archive(root: Path, tmp: Path) -> Backend:
    backend = open_backend(root.as_uri())
    tmp.mkdir(exist_ok=True)
    build_session(backend, tmp, "s-1", LAYOUT)
    return backend


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("dest", "why"),
    [
        (".", "they are the same archive root"),
        ("copy", "one root lies inside the other"),
        ("s-1/copy", "one root lies inside the other"),
        ("alias", "they are the same archive root"),  # a symlink to the root itself
        ("alias/copy", "one root lies inside the other"),
        ("..", "one root lies inside the other"),  # the destination holds the source
    ],
)
def test_sync_refuses_roots_that_overlap_and_copies_nothing(
    tmp_path: Path, dest: str, why: str
) -> None:
    root = tmp_path / "outer" / "archive"
    root.mkdir(parents=True)
    _archive(root, tmp_path / "build").close()
    (root.parent / "alias").symlink_to(root)
    before = _files(root.parent)
    target = root / dest if not dest.startswith("alias") else root.parent / dest

    result = CliRunner().invoke(main, ["sync", str(root), str(target)])

    assert result.exit_code == 2, result.output
    assert f"cannot sync {root.as_uri()} to" in result.output and why in result.output
    assert "Traceback" not in result.output
    # Nothing was copied anywhere (an empty destination folder may have been made).
    assert _files(root.parent) == before


def test_roots_that_only_share_the_start_of_a_name_sync(tmp_path: Path) -> None:
    source = _archive(tmp_path / "archive", tmp_path / "build")
    dest = open_backend((tmp_path / "archive-copy").as_uri())
    assert not roots_overlap(source, dest)
    assert sync(source, dest).ok
    assert contents(dest) == contents(source)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_bucket_prefixes_overlap_only_within_one_bucket_on_one_endpoint(
    make_storage_target: Callable[[str], StorageTarget], tmp_path: Path, kind: str
) -> None:
    target = make_storage_target(kind)  # a fresh bucket (and prefix)
    source = open_backend(f"{target.url}/main", target.options)
    build_session(source, tmp_path, "s-1", LAYOUT)
    inside = open_backend(f"{target.url}/main/copy", target.options)
    beside = open_backend(f"{target.url}/main-copy", target.options)
    other_bucket = make_storage_target(kind).open()
    try:
        with pytest.raises(ConfigError, match="one root lies inside the other"):
            sync(source, inside)
        assert list(inside.list()) == []
        assert sync(source, beside).ok and contents(beside) == contents(source)
        assert not roots_overlap(source, other_bucket)
    finally:
        for backend in (source, inside, beside, other_bucket):
            backend.close()


def test_cli_sync_delete_from_a_mistyped_local_path_deletes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    source = tmp_path / "archive"
    source.mkdir()
    with open_backend(source.as_uri()) as archive, open_backend(dest.as_uri()) as backup:
        (tmp_path / "build").mkdir()
        build_session(archive, tmp_path / "build", "s-1", LAYOUT)
        assert sync(archive, backup).ok
        before = contents(backup)

        result = CliRunner().invoke(main, ["sync", str(tmp_path / "archiv"), str(dest), "--delete"])

        assert result.exit_code == 2, result.output
        assert "holds nothing" in result.output and "--delete" in result.output
        assert contents(backup) == before
