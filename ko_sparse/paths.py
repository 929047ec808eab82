"""Where ko-sparse keeps what it builds once and reuses (tiny base models, built-in data), and how; and
the refusal to write into an output folder that already holds something."""

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
    rename wins, the others discard theirs. A failed build leaves nothing behind; a ``target`` without
    ``marker`` (an earlier build cut short) is replaced.
    """
    target = Path(target)
    if (target / marker).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"  # unique per process and thread
    try:
        build(work)
        if not (work / marker).exists():
            raise RuntimeError(f"building {target} wrote no {marker}")
        _move_into_place(work, target, marker)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a failed build, or one another process finished first
    return target


def _move_into_place(work: Path, target: Path, marker: str) -> None:
    """Rename ``work`` to ``target`` unless another process's complete build is there already."""
    try:
        os.rename(work, target)
    except OSError:
        if (target / marker).exists():
            return
        stale = target.parent / f".{target.name}.{uuid.uuid4().hex}.stale"
        os.rename(target, stale)  # aside first, so that no one reads it half deleted
        shutil.rmtree(stale)
        os.rename(work, target)


def folder_entries(folder: Path) -> list[str]:
    """The names in ``folder``, sorted (none when it does not exist)."""
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []


def not_empty(setting: str, folder: Path, present: list[str], choices: str) -> str:
    """Why a command will not write into ``folder``, which holds ``present``, and the ``choices`` it leaves."""
    shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
    return f"{setting} {folder} is not empty ({shown}): choose a new or empty folder, or {choices}"
