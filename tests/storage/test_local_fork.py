"""Local writes in a process forked from one that already wrote (prefork workers do this).

A nameless temp file is named through this process's ``/proc/self/fd``
descriptor and every write gets a version id from a per-process sequence;
both are kept per process, so a child forked after the parent wrote must
open its own descriptor and draw its own ids.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage_backends import LocalOptions, hash_file
from storage_backends.local import LocalBackend

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(action: object) -> int:
    """Run ``action()`` in a forked child; its exit status (0: it returned)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            action()  # type: ignore[operator]
            status = 0
        finally:
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_child_forked_after_a_write_stores_its_own_bytes(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "root", LocalOptions(fsync=False))
    store.put_bytes("s/before", b"parent")
    source = tmp_path / "child-bytes"
    source.write_bytes(b"written by the child" * 1000)
    crc, sha, _ = hash_file(source)
    # Descriptors the parent holds but the child will not: with the parent's
    # /proc/self/fd the child would name one of these, or nothing.
    held = [os.open(tmp_path, os.O_RDONLY) for _ in range(4)]
    try:

        def child() -> None:
            for fd in held:
                os.close(fd)
            store.put_file("s/child", source, crc32c=crc, sha256=sha)

        assert _in_child(child) == 0
    finally:
        for fd in held:
            os.close(fd)

    assert store.get_bytes("s/child")[0] == source.read_bytes()
    store.put_bytes("s/after", b"parent again")
    assert store.get_bytes("s/after")[0] == b"parent again"


def test_a_forked_child_never_reuses_its_parents_version_ids(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "root", LocalOptions(fsync=False))
    store.put_bytes("s/first", b"1")
    out = tmp_path / "child-versions"

    def child() -> None:
        versions = []
        for n in range(3):
            versions.append(store.put_bytes(f"s/child-{n}", b"c").version or "")
        out.write_text("\n".join(versions))

    assert _in_child(child) == 0
    parent = {store.put_bytes(f"s/parent-{n}", b"p").version for n in range(3)}
    children = set(out.read_text().split("\n"))
    assert len(children) == 3 and len(parent) == 3
    assert not parent & children
