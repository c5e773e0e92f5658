"""Human-readable summaries printed after a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # types only: showing a manifest must not load the archiver and httpx
    from ..archive import RunSummary
    from ..manifest import Manifest


def _console() -> Console:
    return Console(stderr=False, soft_wrap=True)


def _flagged(label: str, style: str, detail: str) -> Text:
    # Text, never markup: IDs, URLs and reasons come from webhooks, and one holding
    # "[/b]" would stop the printing with a MarkupError ("[b]" would restyle it).
    return Text.assemble((label, style), " ", detail)


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
        where = f"{failure['sessionId']}/{failure['participantId']}/{failure['kind']}"
        console.print(
            _flagged("failed", "red", f"{where} {failure['sourceUrl']}: {failure['reason']}")
        )
    for conflict in summary.conflicts:
        console.print(
            _flagged(
                "conflict",
                "yellow",
                f"{conflict['key']} held other content; kept the new file at {conflict['storedAt']}",
            )
        )
    for error in summary.input_errors:
        console.print(_flagged("bad input", "red", error))
    if summary.input_errors:
        count = len(summary.input_errors)
        console.print(
            f"{count} input record{'s' if count != 1 else ''} skipped (listed above); "
            "the records beside them were read",
            highlight=False,
        )
    for session, reason in summary.manifest_failures.items():
        console.print(_flagged("manifest not written", "red", f"session {session}: {reason}"))


def print_manifest(manifest: Manifest) -> None:
    """One row per participant and kind, then failures."""
    console = _console()
    title = f"session {manifest.sessionId}" + (
        f" (meeting {manifest.meetingId})" if manifest.meetingId else ""
    )
    table = Table(title=Text(title))
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
            Text(pid),
            kind,
            str(summary.segmentCount if summary else 0),
            f"{summary.totalBytes:,}" if summary else "0",
            f"{summary.totalDurationSeconds:.1f}" if summary else "0.0",
            state.state if state else "-",
        )
    console.print(table)
    for failure in manifest.failures:
        where = f"{failure.participantId}/{failure.kind} {failure.sourceUrl or ''}"
        console.print(_flagged("failure", "red", f"{where}: {failure.reason}"))
