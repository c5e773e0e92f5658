"""The exception tree of the ``pipeline`` package.

::

    TrackArchiveError
     ├── ConfigError        (also ValueError)  config.yaml or an option is wrong
     ├── InputError         (also ValueError)  a webhook record is malformed
     ├── UnsafeIdentifier   (also ValueError)  an ID cannot become a key component
     ├── JournalError                          the state journal cannot be used
     └── ManifestConflict                      a manifest update kept losing races

Storage errors keep their own tree (``storage_backends.errors.StorageError``);
download problems are reported as results, not raised.
"""

from __future__ import annotations


class TrackArchiveError(Exception):
    """Base of every error the pipeline raises on purpose."""


class ConfigError(TrackArchiveError, ValueError):
    """The configuration file or a command-line option is invalid."""


class InputError(TrackArchiveError, ValueError):
    """A webhook record could not be read; names the source, line and field."""

    def __init__(self, message: str, *, source: str, line: int | None = None):
        self.source = source
        self.line = line
        self.reason = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class UnsafeIdentifier(TrackArchiveError, ValueError):
    """An identifier from a webhook cannot be used as a key component."""


class JournalError(TrackArchiveError):
    """The state journal is unreadable, locked or of an unknown schema."""


class ManifestConflict(TrackArchiveError):
    """A manifest update lost its compare-and-swap race too many times."""
