"""Who holds a segment: worker names that tell whether their process lives, and lapsed leases.

A claim gives its worker a lease until a deadline. Another worker may take a
segment over when that deadline has passed, or sooner when the holder is a
process on this host that no longer exists (a worker killed mid-segment need
not be waited out). A worker on another host is trusted until its lease ends.
"""

from __future__ import annotations

import os
import socket
import threading


def worker_name() -> str:
    """A worker identity that tells whether its process still lives (host:pid:thread)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` ran on this host in a process that no longer exists."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return False
    try:
        pid = int(rest.partition(":")[0])
    except ValueError:
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_lapsed(owner: str | None, lease_until: float | None, now: float) -> bool:
    """Whether a segment held by ``owner`` until ``lease_until`` may be taken over at ``now``."""
    return (lease_until or 0) < now or owner_is_dead(owner)
