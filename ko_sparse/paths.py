"""Where ko-sparse keeps what it builds once and reuses (tiny base models, built-in data)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$KO_SPARSE_CACHE``, else ``~/.cache/ko-sparse``."""
    return Path(os.environ.get("KO_SPARSE_CACHE", Path.home() / ".cache" / "ko-sparse"))
