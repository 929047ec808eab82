"""Where ko-sparse keeps what it builds once and reuses (tiny base models, built-in data), and how."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """``$KO_SPARSE_CACHE``, else ``~/.cache/ko-sparse``."""
    return Path(os.environ.get("KO_SPARSE_CACHE", Path.home() / ".cache" / "ko-sparse"))


def build_once(target: Path, build: Callable[[Path], object], marker: str) -> Path:
    """``target``, built by ``build(folder)`` unless ``target / marker`` exists.

    The build goes to a temporary sibling that is renamed into place, so builders running at the same
    time (the ranks of a data-parallel run, threads of one process) never read half a build: the first
    rename wins, the others discard theirs.
    """
    target = Path(target)
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"  # unique per process and thread
    build(work)
    try:
        os.rename(work, target)
    except OSError:  # another process put its build there first
        shutil.rmtree(work, ignore_errors=True)
    return target
