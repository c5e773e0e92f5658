"""Copy an archive between backends: incremental by content, verified, resumable.

``sync(source, dest, SyncOptions(...))`` returns a ``SyncReport``; see
``run.py`` for the order of operations and ``plan.py`` for how content is
compared without re-reading unchanged objects.
"""

from .copy import Copied, CopyMismatch, copy_object
from .digest import Digest, Verdict, compare
from .plan import Action, Plan, Step, build_plan
from .report import Outcome, SyncItem, SyncProgress, SyncReport
from .run import DEFAULT_CONCURRENCY, Copier, SyncOptions, copy_one, sync

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Action",
    "Copied",
    "Copier",
    "CopyMismatch",
    "Digest",
    "Outcome",
    "Plan",
    "Step",
    "SyncItem",
    "SyncOptions",
    "SyncProgress",
    "SyncReport",
    "Verdict",
    "build_plan",
    "compare",
    "copy_object",
    "copy_one",
    "sync",
]
