"""Human-readable summaries printed after a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # types only: showing a manifest must not load the archiver and httpx
    from ..archive import RunSummary
    from ..manifest import Manifest


def _console() -> Console:
    return Console(stderr=False, soft_wrap=True)


def print_summary(summary: RunSummary) -> None:
    """The archive run's counts and every failure with its reason."""
    console = _console()
    table = Table(title="archive run", show_header=True)
    for column in ("archived", "skipped", "failed", "bytes", "input errors"):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.archived),
        str(summary.skipped),
        str(summary.failed),
        f"{summary.bytes:,}",
        str(len(summary.input_errors)),
    )
    console.print(table)
    for failure in summary.failures:
        console.print(
            f"[red]failed[/red] {failure['sessionId']}/{failure['participantId']}/{failure['kind']} {failure['sourceUrl']}: {failure['reason']}",
            markup=True,
            highlight=False,
        )
    for conflict in summary.conflicts:
        console.print(
            f"[yellow]conflict[/yellow] {conflict['key']} held other content; kept the new file at {conflict['storedAt']}",
            highlight=False,
        )
    for error in summary.input_errors:
        console.print(f"[red]bad input[/red] {error}", highlight=False)
    if summary.input_errors:
        count = len(summary.input_errors)
        console.print(
            f"{count} input record{'s' if count != 1 else ''} skipped (listed above); "
            "the records beside them were read",
            highlight=False,
        )
    for session, reason in summary.manifest_failures.items():
        console.print(
            f"[red]manifest not written[/red] session {session}: {reason}", highlight=False
        )


def print_manifest(manifest: Manifest) -> None:
    """One row per participant and kind, then failures."""
    console = _console()
    table = Table(
        title=f"session {manifest.sessionId}"
        + (f" (meeting {manifest.meetingId})" if manifest.meetingId else "")
    )
    for column, justify in (
        ("participant", "left"),
        ("kind", "left"),
        ("segments", "right"),
        ("bytes", "right"),
        ("duration s", "right"),
        ("state", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]  # rich accepts these literals
    pairs = sorted(
        {(p, k) for p, kinds in manifest.summary.items() for k in kinds}
        | {(p, k) for p, kinds in manifest.lifecycle.items() for k in kinds}
    )
    for pid, kind in pairs:
        summary = manifest.summary.get(pid, {}).get(kind)
        state = manifest.lifecycle.get(pid, {}).get(kind)
        table.add_row(
            pid,
            kind,
            str(summary.segmentCount if summary else 0),
            f"{summary.totalBytes:,}" if summary else "0",
            f"{summary.totalDurationSeconds:.1f}" if summary else "0.0",
            state.state if state else "-",
        )
    console.print(table)
    for failure in manifest.failures:
        console.print(
            f"[red]failure[/red] {failure.participantId}/{failure.kind} {failure.sourceUrl or ''}: {failure.reason}",
            highlight=False,
        )
