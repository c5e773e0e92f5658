"""One verification check and what it found, as recorded in every report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one verification step: what was expected, what was found."""

    name: str
    ok: bool
    expected: Any = None
    found: Any = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for manifests, journals and ``--json`` output."""
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        """:meth:`as_dict` with any value JSON cannot hold turned into its string."""
        data = self.as_dict()
        for key in ("expected", "found"):
            value = data[key]
            if not (value is None or isinstance(value, str | int | float | bool | list | dict)):
                data[key] = str(value)
        return data

    def describe(self) -> str:
        """One line for logs and failure reasons."""
        text = f"{self.name}: expected {self.expected!r}, found {self.found!r}"
        return f"{text} ({self.detail})" if self.detail else text


def first_failure(checks: list[Check]) -> Check | None:
    """The first failed check, which is the reason a file is refused."""
    return next((c for c in checks if not c.ok), None)
