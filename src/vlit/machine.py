"""Facts about the machine this process runs on."""

from __future__ import annotations

import os


def cores() -> int:
    """CPU cores this process may use (its affinity, not the host's count, in a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
