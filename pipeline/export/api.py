"""``export_session``: a session's segments as playable files, for the CLI and for scripts::

    from storage_backends import open_backend
    from pipeline.export import ExportRequest, export_session

    with open_backend("s3://bucket/recordings") as archive:
        report = export_session(archive, "613731342f27f56e4fc4b6d0", ExportRequest(mode="normalize"))
        for exported in report.files:
            print(exported.url, exported.duration)

One participant's failure (a segment that fails its checksum or cannot be
decoded) is reported and leaves nothing at the destination; the others still
export. Exports written into the archive are listed in the session's manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from storage_backends import Backend, StorageError

from ..errors import UnsafeIdentifier
from ..layout import export_name
from ..manifest import (
    ExportEntry,
    ExportSource,
    ManifestUpdate,
    read_manifest,
    update_manifest,
    utcnow,
)
from ..scratch import ScratchDir, ScratchError
from .destination import Destination, inputs_digest
from .errors import ExportError, ExportUsageError, ExportWriteFailed, SessionNotFound
from .formats import AUDIO_EXTENSIONS, CONTENT_TYPES, resolve_format
from .timeline import AUDIO_KINDS, KINDS, Placement, Timeline, Track, build_timeline

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the options of ``track-archive export``."""

    mode: str = "copy"
    format: str | None = None
    participants: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    mix: bool = False


class ExportProgress(Protocol):
    """Told how many seconds of timeline there are to write, and as they are written."""

    def begin(self, total_seconds: float) -> None: ...

    def advance(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One file at the destination, written now or found unchanged."""

    participant_id: str | None
    pair: str
    key: str
    url: str
    status: str  # "written" or "unchanged"
    size: int
    sha256: str
    start: float
    duration: float
    sources: tuple[str, ...]

    def to_record(self) -> dict[str, Any]:
        """JSON-ready, with the manifest's camelCase names."""
        return {
            "participantId": self.participant_id,
            "pair": self.pair,
            "key": self.key,
            "url": self.url,
            "status": self.status,
            "size": self.size,
            "sha256": self.sha256,
            "startSeconds": round(self.start, 3),
            "durationSeconds": round(self.duration, 3),
            "sources": list(self.sources),
        }


@dataclass(frozen=True, slots=True)
class ExportFailure:
    """An export that could not be made; nothing of it is at the destination."""

    participant_id: str | None
    pair: str
    reason: str
    segment_key: str | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "participantId": self.participant_id,
            "pair": self.pair,
            "reason": self.reason,
            "segmentKey": self.segment_key,
        }


@dataclass
class ExportReport:
    """Everything one ``export_session`` call did."""

    session_id: str
    mode: str
    format: str
    destination: str
    timeline: Timeline
    #: The whole session's length (time zero to its last segment's end).
    session_seconds: float = 0.0
    files: list[ExportedFile] = field(default_factory=list)
    failures: list[ExportFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every requested export exists at the destination."""
        return not self.failures

    def to_record(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "sessionId": self.session_id,
            "mode": self.mode,
            "format": self.format,
            "destination": self.destination,
            "sessionSeconds": round(self.session_seconds, 3),
            "written": [f.to_record() for f in self.files if f.status == "written"],
            "unchanged": [f.to_record() for f in self.files if f.status == "unchanged"],
            "failed": [f.to_record() for f in self.failures],
            "segments": [
                {
                    "participantId": p.participant_id,
                    "kind": p.kind,
                    "key": p.segment.key,
                    "offsetSeconds": p.offset,
                    "durationSeconds": p.duration,
                    "startFrom": p.source,
                    **({"shiftedSeconds": p.shifted} if p.shifted else {}),
                }
                for p in self.timeline.placements()
            ],
        }


#: Writes one export to a local path; returns where its media starts and ends.
Writer = Callable[[Path, Callable[[float], None]], tuple[float, float]]


def _check_request(request: ExportRequest, timeline: Timeline, manifest_pids: set[str]) -> None:
    unknown = [k for k in request.kinds if k not in KINDS]
    if unknown:
        raise ExportUsageError(f"unknown kind {unknown[0]!r}: choose from {', '.join(KINDS)}")
    missing = [p for p in request.participants if p not in manifest_pids]
    if missing:
        raise ExportUsageError(f"session {timeline.session_id} has no participant {missing[0]!r}")


def export_session(
    backend: Backend,
    session_id: str,
    request: ExportRequest | None = None,
    *,
    out: Backend | None = None,
    progress: ExportProgress | None = None,
    temp_dir: Path | None = None,
) -> ExportReport:
    """Export ``session_id`` from the archive ``backend`` (into it, or into ``out``)."""
    request = request or ExportRequest()
    fmt = resolve_format(request.mode, request.format)
    manifest, _ = read_manifest(backend, session_id)
    if manifest is None:
        raise SessionNotFound(f"no manifest for session {session_id!r} in {backend.url}")
    timeline = build_timeline(manifest, participants=request.participants, kinds=request.kinds)
    _check_request(request, timeline, set(manifest.participants))
    destination = (
        Destination.in_session(backend, session_id)
        if out is None
        else Destination.elsewhere(out, session_id)
    )
    report = ExportReport(session_id, request.mode, fmt, destination.backend.url, timeline)
    # The session's length and the mix are always everyone's, whatever was picked.
    everyone = build_timeline(manifest)
    report.session_seconds = everyone.end
    with _scratch(temp_dir) as scratch:
        # Segments fetched from a bucket are spooled here too, not in ``temp_dir`` itself.
        jobs = _jobs(backend, timeline, everyone, request, fmt, scratch)
        if progress is not None:
            progress.begin(sum(span for *_, span, _ in jobs))
        entries: list[ExportEntry] = []
        for participant_id, pair, placements, extension, span, writer in jobs:
            try:
                name = export_name(participant_id, pair, request.mode, extension)
            except UnsafeIdentifier as exc:
                report.failures.append(ExportFailure(participant_id, pair, str(exc)))
                continue
            key = destination.key(name)
            digest = inputs_digest(
                mode=request.mode,
                fmt=fmt,
                pair=pair,
                zero_ms=timeline.zero_ms,
                end=None if request.mode == "copy" and pair != "mix" else everyone.end,
                placements=placements,
            )
            try:
                result = _export_one(
                    destination,
                    key,
                    digest,
                    writer,
                    Path(scratch) / name,
                    extension,
                    lambda seconds: progress.advance(seconds) if progress else None,
                )
            except (ExportError, StorageError) as exc:
                log.warning("export of %s %s failed: %s", participant_id or "session", pair, exc)
                report.failures.append(
                    ExportFailure(participant_id, pair, str(exc), getattr(exc, "key", None))
                )
                if progress is not None:
                    progress.advance(span)
                continue
            status, size, crc32c, sha256, start, end = result
            exported = ExportedFile(
                participant_id,
                pair,
                key,
                destination.url(key),
                status,
                size,
                sha256,
                start,
                end - start,
                tuple(p.segment.key for p in placements),
            )
            report.files.append(exported)
            if status == "unchanged" and progress is not None:
                progress.advance(span)
            entries.append(
                ExportEntry(
                    key=key,
                    participantId=participant_id,
                    pair=pair,
                    mode=request.mode,
                    format=fmt,
                    size=size,
                    sha256=sha256,
                    crc32c=crc32c,
                    startSeconds=round(start, 3),
                    durationSeconds=round(end - start, 3),
                    inputs=digest,
                    createdAt=utcnow(),
                    sources=[
                        ExportSource(key=p.segment.key, sha256=p.segment.sha256) for p in placements
                    ],
                )
            )
    if destination.in_archive:
        _record(backend, session_id, manifest.exports, entries)
    return report


@contextmanager
def _scratch(temp_dir: Path | None) -> Iterator[Path]:
    """This export's own working directory; one a killed export left is removed (``pipeline.scratch``)."""
    scratch = ScratchDir(temp_dir, "export")
    try:
        path = scratch.open()
    except ScratchError as exc:
        raise ExportWriteFailed(str(exc)) from exc
    try:
        yield path
    finally:
        scratch.close()


def _record(
    backend: Backend, session_id: str, listed: list[ExportEntry], entries: list[ExportEntry]
) -> None:
    """List new exports in the manifest (an unchanged one already listed is left as is)."""
    known = {(e.key, e.inputs) for e in listed}
    fresh = [e for e in entries if (e.key, e.inputs) not in known]
    if fresh:
        update_manifest(backend, ManifestUpdate(session_id=session_id, exports=fresh))


def _export_one(
    destination: Destination,
    key: str,
    digest: str,
    writer: Writer,
    path: Path,
    extension: str,
    advance: Callable[[float], None],
) -> tuple[str, int, str, str, float, float]:
    existing = destination.existing(key, digest)
    if existing is not None:
        meta = existing.metadata
        start = float(meta.get("export-start", 0.0))
        end = float(meta.get("export-end", 0.0))
        return "unchanged", existing.size, existing.crc32c or "", existing.sha256 or "", start, end
    try:
        start, end = _write(writer, path, advance, key)
        size, crc32c, sha256 = destination.publish(
            key,
            path,
            content_type=CONTENT_TYPES[extension],
            inputs=digest,
            extra={"export-start": f"{start:.6f}", "export-end": f"{end:.6f}"},
        )
    finally:
        path.unlink(missing_ok=True)
    return "written", size, crc32c, sha256, start, end


def _write(
    writer: Writer, path: Path, advance: Callable[[float], None], key: str
) -> tuple[float, float]:
    """Run ``writer``, turning FFmpeg's and the disk's errors into :class:`ExportWriteFailed`."""
    import av.error

    try:
        return writer(path, advance)
    except ExportError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise ExportWriteFailed(f"writing {key} failed: {exc}") from exc


def _jobs(
    backend: Backend,
    timeline: Timeline,
    everyone: Timeline,
    request: ExportRequest,
    fmt: str,
    temp_dir: Path | None,
) -> list[tuple[str | None, str, tuple[Placement, ...], str, float, Writer]]:
    """One job per participant pair, plus the mix when asked for."""
    jobs: list[tuple[str | None, str, tuple[Placement, ...], str, float, Writer]] = []
    for track in timeline.tracks:
        span = (track.end - track.start) if request.mode == "copy" else everyone.end
        jobs.append(
            (track.participant_id, track.pair, track.placements, fmt, span,
             _track_writer(backend, track, everyone, request.mode, fmt, temp_dir))
        )  # fmt: skip
    if request.mix:
        audio = tuple(p for p in everyone.placements() if p.kind in AUDIO_KINDS)
        if audio:
            jobs.append(
                (None, "mix", audio, AUDIO_EXTENSIONS[fmt], everyone.end,
                 _mix_writer(backend, audio, everyone, fmt, temp_dir))
            )  # fmt: skip
    return jobs


def _track_writer(
    backend: Backend, track: Track, timeline: Timeline, mode: str, fmt: str, temp_dir: Path | None
) -> Writer:
    def write(path: Path, advance: Callable[[float], None]) -> tuple[float, float]:
        if mode == "copy":
            from .copy import write_copy

            written = write_copy(backend, track, path, fmt, progress=advance, temp_dir=temp_dir)
        else:
            from .normalize import write_normalized

            written = write_normalized(
                backend, track, timeline.end, path, fmt, progress=advance, temp_dir=temp_dir
            )
        return written.start, written.end

    return write


def _mix_writer(
    backend: Backend,
    audio: tuple[Placement, ...],
    timeline: Timeline,
    fmt: str,
    temp_dir: Path | None,
) -> Writer:
    def write(path: Path, advance: Callable[[float], None]) -> tuple[float, float]:
        from .mix import write_mix

        written = write_mix(
            backend, audio, timeline.end, path, fmt, progress=advance, temp_dir=temp_dir
        )
        return written.start, written.end

    return write
