"""``sync --session``: a session the source does not hold is named, not passed over in silence."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main
from storage_backends import open_backend

from .builders import build_session

LAYOUT = {("alice", "audio"): 2, ("bob", "video"): 1}


def test_a_session_id_the_source_lacks_is_named_and_the_others_still_copy(tmp_path: Path) -> None:
    source = tmp_path / "archive"
    (tmp_path / "build").mkdir()
    with open_backend(source.as_uri()) as backend:
        build_session(backend, tmp_path / "build", "s-1", LAYOUT)
    dest = tmp_path / "copy"
    args = ["sync", str(source), str(dest), "--session", "s-1", "--session", "s-l", "--json"]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["copied"] == 4  # s-1: three segments and its manifest
    assert f"no session 's-l' in {source}" in result.stderr
    assert "'s-1'" not in result.stderr

    again = CliRunner().invoke(main, [*args[:-3], "--json"])  # only s-1, all unchanged now
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == 4
    assert again.stderr == ""
