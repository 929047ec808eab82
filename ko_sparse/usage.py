"""What a run used: the process's peak memory, reported by training, packaging and the benchmarks."""

from __future__ import annotations

import resource
import sys


def peak_resident_bytes() -> int:
    """The process's peak resident set size (Linux reports kilobytes, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
