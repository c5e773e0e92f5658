"""A run's view of a local root checks and makes each directory once; failures name the directory.

The kernel calls are counted by wrapping ``os.mkdir`` and ``os.lstat``: how
often a directory is asked about is not visible through the backend's
contract, and it is the behaviour under test.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from storage_backends import LocalOptions, StorageError, hash_bytes
from storage_backends.keys import INTERNAL_PREFIX
from storage_backends.local import LocalBackend

KEYS = [f"s-{s}/alice/audio/seg-{i}.webm" for s in range(3) for i in range(8)]


def _put(backend: LocalBackend, tmp: Path, key: str) -> None:
    data = key.encode() * 20
    crc, sha = hash_bytes(data)
    path = tmp / key.replace("/", "_")
    path.write_bytes(data)
    backend.put_file(key, path, crc32c=crc, sha256=sha, if_absent=True)


def _spy(
    monkeypatch: pytest.MonkeyPatch, name: str, before: Callable[[str], None] | None = None
) -> Counter[tuple[str, bool]]:
    """Count calls of ``os.<name>`` by (path, succeeded)."""
    real = getattr(os, name)
    calls: Counter[tuple[str, bool]] = Counter()
    lock = threading.Lock()

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(os.fspath(path))
        try:
            result = real(path, *args, **kwargs)
        except OSError:
            with lock:
                calls[(os.fspath(path), False)] += 1
            raise
        with lock:
            calls[(os.fspath(path), True)] += 1
        return result

    monkeypatch.setattr(os, name, counted)
    return calls


def test_concurrent_writers_make_each_directory_once_without_failing_mkdirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = LocalBackend(tmp_path / "root", LocalOptions(fsync=False)).run_view()
    # A pause before each mkdir lets every writer reach it at once, as under load.
    mkdirs = _spy(monkeypatch, "mkdir", before=lambda path: time.sleep(0.05))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: _put(view, tmp_path, key), KEYS))

    # The backend's own work directory (temp files, locks) is not a key's directory.
    keys_dirs = {call: n for call, n in mkdirs.items() if INTERNAL_PREFIX not in call[0]}
    made = {path for (path, ok) in keys_dirs if ok}
    assert [call for call in keys_dirs if not call[1]] == [], "a mkdir failed"
    assert all(count == 1 for count in keys_dirs.values())
    assert {os.path.relpath(p, tmp_path / "root") for p in made} == {
        f"s-{s}{sub}" for s in range(3) for sub in ("", "/alice", "/alice/audio")
    }
    assert all(view.stat(key) is not None for key in KEYS)


def test_a_run_view_checks_each_directory_for_links_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = LocalBackend(tmp_path / "root", LocalOptions(fsync=False))
    for key in KEYS:
        _put(plain, tmp_path, key)
    view = plain.run_view()
    lstats = _spy(monkeypatch, "lstat")
    for key in KEYS:
        assert view.local_path(key) is not None
        assert view.stat(key) is not None

    asked = Counter(path for (path, _), n in lstats.items() for _ in range(n))
    directories = {p: n for p, n in asked.items() if os.path.isdir(p)}
    assert directories and all(n == 1 for n in directories.values()), directories


def test_the_plain_backend_still_notices_a_directory_replaced_by_a_link(tmp_path: Path) -> None:
    plain = LocalBackend(tmp_path / "root", LocalOptions(fsync=False))
    _put(plain, tmp_path, "s-0/alice/audio/a.webm")
    elsewhere = tmp_path / "elsewhere"
    (plain.root / "s-0" / "alice").rename(elsewhere)
    (plain.root / "s-0" / "alice").symlink_to(elsewhere)
    assert plain.local_path("s-0/alice/audio/a.webm") is None


@pytest.mark.parametrize("view", [False, True], ids=["plain", "run view"])
def test_a_directory_that_cannot_be_made_is_named(tmp_path: Path, view: bool) -> None:
    backend = LocalBackend(tmp_path / "root", LocalOptions(fsync=False))
    target = backend.run_view() if view else backend
    # A file stands where the session's directory must go.
    (backend.root / "s-1").write_bytes(b"not a directory")
    with pytest.raises(
        StorageError, match=r"cannot create directory 's-1/alice' .*Not a directory"
    ):
        _put(target, tmp_path, "s-1/alice/audio/a.webm")
    _put(target, tmp_path, "s-2/alice/audio/a.webm")  # other directories are unaffected
