"""Reading and updating manifests on a backend with compare-and-swap."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from pydantic import ValidationError

from storage_backends import Backend, PreconditionFailed

from ..errors import ManifestConflict, TrackArchiveError
from ..layout import manifest_key
from .merge import ManifestUpdate, merge
from .model import Manifest

#: Attempts before a manifest update gives up; each lost race re-reads first.
MAX_CAS_ATTEMPTS = 20


class ManifestUnreadable(TrackArchiveError):
    """A stored manifest is not a valid manifest document."""


def read_manifest(backend: Backend, session_id: str) -> tuple[Manifest | None, str | None]:
    """The session's manifest and its version token, or ``(None, None)``."""
    key = manifest_key(session_id)
    stat = backend.stat(key)
    if stat is None:
        return None, None
    data, stat = backend.get_bytes(key)
    try:
        return Manifest.from_json(data), stat.version
    except ValidationError as exc:
        raise ManifestUnreadable(
            f"{backend.url} {key}: not a valid manifest ({exc.error_count()} errors)"
        ) from None


def update_manifest(
    backend: Backend, update: ManifestUpdate, *, on_lost_race: Callable[[], None] | None = None
) -> Manifest:
    """Merge ``update`` into the stored manifest, retrying lost races.

    The write is create-only when there is no manifest yet and a
    compare-and-swap against the version read otherwise, so a concurrent
    writer's entries are re-read and kept rather than overwritten.
    ``on_lost_race`` is called for each race lost (to measure contention).
    """
    key = manifest_key(update.session_id)
    for attempt in range(MAX_CAS_ATTEMPTS):
        current, version = read_manifest(backend, update.session_id)
        merged = merge(current, update)
        try:
            if version is None:
                backend.put_bytes(
                    key, merged.to_json(), content_type="application/json", if_absent=True
                )
            else:
                backend.put_bytes(
                    key, merged.to_json(), content_type="application/json", if_version=version
                )
            return merged
        except PreconditionFailed:
            if on_lost_race is not None:
                on_lost_race()
            # Someone else wrote in between: back off a little, re-read, re-merge.
            time.sleep(random.uniform(0, min(0.05 * 2**attempt, 1.0)))
    raise ManifestConflict(
        f"{backend.url} {key}: lost {MAX_CAS_ATTEMPTS} compare-and-swap races in a row"
    )
