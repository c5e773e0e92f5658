"""Deciding what a sync does, from the two listings wherever possible.

Content is judged by size plus the checksums recorded when each object was
written: first those a listing carries (GCS and local listings carry CRC32C),
then those the session's manifest recorded for its segments (S3 listings carry
no checksum). Only a pair that neither source can settle costs a request per
object (a stat, and as a last resort reading the bytes); unchanged files are
never re-hashed.

What the copy must prove comes from the same records: the source manifest of
every session with something to copy is read, and a source object whose size
or checksums contradict its manifest entry is refused outright (it was changed
or truncated after it was archived), as is a manifest whose bytes contradict
its own stored checksum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import ValidationError

from storage_backends.base import Backend, ObjectStat
from storage_backends.checksums import CHUNK_SIZE, Hasher, hash_bytes
from storage_backends.errors import ObjectNotFound

from ..layout import MANIFEST_NAME, is_manifest_key, session_prefix
from ..manifest import Manifest
from .digest import Digest, Verdict, compare, digest_of, reconciled


class Action(Enum):
    """What the sync does with one key."""

    COPY = "copy"  # the destination lacks it
    REPLACE = "replace"  # different content at the destination, --overwrite given
    SKIP = "skip"  # same content on both sides
    CONFLICT = "conflict"  # different content at the destination, left alone
    REVIEW = "review"  # two different manifests: decided by reading both
    REFUSE = "refuse"  # the source object contradicts what was recorded for it
    DELETE = "delete"  # only at the destination, --delete given
    KEEP = "keep"  # only at the destination, left alone


def session_of(key: str) -> str:
    """The (encoded) session component a key lives under."""
    return key.split("/", 1)[0]


@dataclass
class Listing:
    """One side of a sync: what it holds and what is known of each object's content."""

    backend: Backend
    stats: dict[str, ObjectStat]
    digests: dict[str, Digest] = field(default_factory=dict)
    #: Manifests read while planning, by session component: (bytes, stat of those bytes).
    manifests: dict[str, tuple[bytes, ObjectStat]] = field(default_factory=dict)
    #: The keys each of those manifests names (segments, then exports), parsed once;
    #: ``None`` for a manifest that is not a valid manifest.
    named: dict[str, list[str] | None] = field(default_factory=dict)
    #: Objects whose records contradict each other, with the reason.
    disputes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.digests:
            self.digests = {key: digest_of(stat) for key, stat in self.stats.items()}


@dataclass(frozen=True, slots=True)
class Step:
    """One planned action on one key."""

    key: str
    action: Action
    session: str
    is_manifest: bool
    size: int
    source: ObjectStat | None = None
    dest: ObjectStat | None = None
    #: What the source's content is known to be (verified again while copying).
    expected: Digest | None = None
    reason: str | None = None


@dataclass
class Plan:
    """Every step of a sync, segments and manifests alike, in key order."""

    steps: list[Step]
    source: Listing
    dest: Listing

    def of(self, *actions: Action) -> list[Step]:
        """The steps with one of ``actions``."""
        return [step for step in self.steps if step.action in actions]


def list_backend(backend: Backend, sessions: Sequence[str] = ()) -> dict[str, ObjectStat]:
    """List the whole archive, or only the given sessions' prefixes."""
    prefixes: Iterable[str] = [session_prefix(s) for s in sessions] if sessions else [""]
    return {stat.key: stat for prefix in prefixes for stat in backend.list(prefix)}


def read_small(backend: Backend, key: str) -> tuple[bytes, ObjectStat] | None:
    """Read a manifest whole, or ``None`` when it vanished since the listing."""
    try:
        return backend.get_bytes(key)
    except ObjectNotFound:
        return None


def _learn_from_manifest(listing: Listing, session: str) -> None:
    """Record a session manifest's own digest and the checksums it lists.

    A listed object whose size or checksums contradict its manifest entry is
    recorded as a dispute (and keeps the digest its listing gave).
    """
    key = f"{session}/{MANIFEST_NAME}"
    found = read_small(listing.backend, key)
    if found is None:
        return
    data, stat = found
    listing.manifests[session] = found
    crc, sha = hash_bytes(data)
    listing.stats[key] = stat
    listing.digests[key] = read = Digest(len(data), crc, sha)
    if reconciled(read, digest_of(stat)) is None:
        listing.disputes[key] = (
            f"the manifest read ({read.describe()}) is not the one stored "
            f"({digest_of(stat).describe()})"
        )
    try:
        manifest = Manifest.from_json(data)
    except ValidationError:
        listing.named[session] = None
        return  # an unreadable manifest still has a digest; its segments stay unknown
    recorded = [(s.key, s.size, s.crc32c, s.sha256) for _, _, s in manifest.segments()]
    recorded += [(e.key, e.size, e.crc32c, e.sha256) for e in manifest.exports]
    listing.named[session] = [key for key, *_ in recorded]
    for key, size, crc32c, sha256 in recorded:
        known = listing.digests.get(key)
        if known is None:
            continue
        stated = Digest(size, crc32c or None, sha256 or None)
        both = reconciled(known, stated)
        if both is None:
            listing.disputes[key] = (
                f"the object ({known.describe()}) is not what its manifest records "
                f"({stated.describe()}): changed or truncated after it was archived"
            )
        else:
            listing.digests[key] = both


def _sessions_lacking(listing: Listing, keys: Iterable[str]) -> set[str]:
    return {session_of(k) for k in keys if not listing.digests[k].has_checksum}


def _sessions_moving(source: Listing, dest: Listing) -> set[str]:
    """Sessions with an object the listings do not show to be at the destination already."""
    return {
        session_of(key)
        for key, digest in source.digests.items()
        if key not in dest.digests or compare(digest, dest.digests[key]) is not Verdict.SAME
    }


def _stat_unrecorded(source: Listing, keys: list[str], pool: Executor) -> None:
    """Ask the source for checksums of objects no listing or manifest records any for."""

    def stat_one(key: str) -> None:
        stat = source.backend.stat(key)
        if stat is not None:
            source.digests[key] = source.digests[key].merged(digest_of(stat))

    list(pool.map(stat_one, keys))


def _hash_remote(backend: Backend, key: str) -> Digest | None:
    """Read an object through to learn its checksums (only for keys nothing else settles)."""
    hasher = Hasher()
    try:
        with backend.open_read(key) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
    except ObjectNotFound:
        return None
    return Digest(hasher.size, hasher.crc32c, hasher.sha256)


def _settle_unknown(source: Listing, dest: Listing, keys: list[str], pool: Executor) -> None:
    """Ask per object, then read per object, for pairs the listings cannot compare."""

    def stat_both(key: str) -> None:
        for side in (source, dest):
            stat = side.backend.stat(key)
            if stat is not None:
                side.digests[key] = side.digests[key].merged(digest_of(stat))

    list(pool.map(stat_both, keys))
    still = [k for k in keys if compare(source.digests[k], dest.digests[k]) is Verdict.UNKNOWN]

    def hash_both(key: str) -> None:
        for side in (source, dest):
            found = _hash_remote(side.backend, key)
            if found is not None:
                side.digests[key] = side.digests[key].merged(found)

    list(pool.map(hash_both, still))


def build_plan(
    source_backend: Backend,
    dest_backend: Backend,
    *,
    sessions: Sequence[str] = (),
    overwrite: bool = False,
    delete: bool = False,
    pool: Executor,
) -> Plan:
    """List both sides and decide the action for every key either side holds."""
    src_future = pool.submit(list_backend, source_backend, sessions)
    dst_future = pool.submit(list_backend, dest_backend, sessions)
    source = Listing(source_backend, src_future.result())
    dest = Listing(dest_backend, dst_future.result())

    shared = [k for k in source.stats if k in dest.stats]
    need_src = _sessions_lacking(source, source.stats)
    need_dst = _sessions_lacking(dest, shared)
    reads = [(source, s) for s in sorted(need_src)] + [(dest, s) for s in sorted(need_dst)]
    list(pool.map(lambda job: _learn_from_manifest(*job), reads))
    # Every session with something to copy needs its source manifest: it is the
    # record the copies are proved against.
    more = sorted(_sessions_moving(source, dest) - need_src)
    list(pool.map(lambda session: _learn_from_manifest(source, session), more))

    unknown = [k for k in shared if compare(source.digests[k], dest.digests[k]) is Verdict.UNKNOWN]
    if unknown:
        _settle_unknown(source, dest, unknown, pool)
    unrecorded = [
        k for k, d in source.digests.items() if k not in dest.stats and not d.has_checksum
    ]
    if unrecorded:
        _stat_unrecorded(source, unrecorded, pool)

    keys = sorted(set(source.stats) | set(dest.stats))
    steps = [_decide(key, source, dest, overwrite=overwrite, delete=delete) for key in keys]
    return Plan(steps, source, dest)


def _decide(key: str, source: Listing, dest: Listing, *, overwrite: bool, delete: bool) -> Step:
    manifest = is_manifest_key(key)
    src, dst = source.stats.get(key), dest.stats.get(key)

    def step(action: Action, size: int, **details: Any) -> Step:
        return Step(key, action, session_of(key), manifest, size, src, dst, **details)

    if src is None:
        assert dst is not None  # every key comes from one of the two listings
        return step(Action.DELETE if delete else Action.KEEP, dst.size)
    expected = source.digests[key]
    if key in source.disputes:
        return step(Action.REFUSE, expected.size, reason=source.disputes[key])
    if dst is None:
        return step(Action.COPY, expected.size, expected=expected)
    verdict = compare(expected, dest.digests[key])
    if verdict is Verdict.SAME:
        return step(Action.SKIP, expected.size, expected=expected)
    if manifest:
        return step(Action.REVIEW, expected.size, expected=expected, reason="manifests differ")
    if verdict is Verdict.UNKNOWN:
        reason = "no checksum on one side to compare the two copies"
        return step(Action.CONFLICT, expected.size, expected=expected, reason=reason)
    action = Action.REPLACE if overwrite else Action.CONFLICT
    reason = "different content at the destination"
    return step(action, expected.size, expected=expected, reason=reason)
