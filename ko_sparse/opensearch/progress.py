"""What ``ko-sparse index`` has committed, so that ``--resume`` continues where a run stopped.

A batch is committed once the cluster has acknowledged every document in it (an acknowledged write is
in the shard's translog, so it survives a crash of the node) and its failures are in the failures
file. ``progress.json`` then records the source offset after the batch, the counts, and the failures
file's length; it is replaced atomically. A resumed run reads the source from that offset, cuts the
failures file back to that length and sends the documents after it again: their ``_id``s are fixed,
so whatever of them the cluster had already written is overwritten with the same content. A new run
keeps the previous runs' failures: their file is renamed ``failures-1.jsonl``, ``failures-2.jsonl`` ...
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ko_sparse.errors import ClusterError

PROGRESS_FILE = "progress.json"
FAILURES_FILE = "failures.jsonl"


class ResumeError(ClusterError):
    """An earlier run cannot be continued (or must be, before starting again); the message says what to do."""


@dataclass
class Progress:
    index: str
    source: str  # the corpus fingerprint
    settings: str  # what built the documents (model, pruning, fields): a resumed run must match
    next_offset: int = 0
    indexed: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    retried: dict[str, int] = field(default_factory=dict)  # status -> documents sent again for it
    seconds: float = 0.0
    failures_bytes: int = 0
    runs: int = 1
    complete: bool = False

    def save(self, folder: Path) -> None:
        temporary = folder / f".{PROGRESS_FILE}.tmp"
        temporary.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(temporary, folder / PROGRESS_FILE)

    @classmethod
    def load(cls, folder: Path) -> Progress | None:
        path = folder / PROGRESS_FILE
        return cls(**json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def starting_point(folder: Path, index: str, source: str, settings: str, resume: bool, restart: bool) -> Progress:
    """Where this run starts: the saved progress when resuming, else offset 0 (refused when an unfinished run
    of the same index would be silently dropped)."""
    saved = Progress.load(folder)
    fresh = Progress(index, source, settings)
    if saved is None or restart or saved.index != index:
        return fresh
    if not resume:
        if saved.complete:
            return fresh
        raise ResumeError(
            f"an earlier run into {index} stopped after source row {saved.next_offset:,} ({saved.indexed:,} indexed; "
            f"{folder / PROGRESS_FILE}): add --resume to continue it, or --restart to index from the first row"
        )
    if saved.source != source:
        raise ResumeError(
            f"--resume: the corpus is not the one the earlier run read ({saved.source} then, {source} now); "
            "use --restart to index it from the first row"
        )
    if saved.settings != settings:
        raise ResumeError(
            "--resume: the earlier run used other settings (model, pruning, fields or batch size); "
            "repeat its options, or use --restart"
        )
    saved.runs += 1
    return saved


def keep_earlier_failures(folder: Path) -> None:
    """Rename a previous run's failures file, when it has any, to the next free ``failures-N.jsonl``."""
    path = folder / FAILURES_FILE
    if not path.is_file() or not path.stat().st_size:
        return
    kept = [p.stem.removeprefix("failures-") for p in folder.glob("failures-*.jsonl")]
    number = 1 + max((int(n) for n in kept if n.isdigit()), default=0)
    path.rename(folder / f"failures-{number}.jsonl")


def open_failures(folder: Path, progress: Progress):
    """This run's failures file: a resumed run's cut back to what the progress counts (it rewrites what came
    after), a new run's empty (the earlier runs' are kept, see :func:`keep_earlier_failures`)."""
    path = folder / FAILURES_FILE
    if progress.runs == 1:
        keep_earlier_failures(folder)
    with path.open("ab"):
        pass
    with path.open("r+b") as file:
        file.truncate(progress.failures_bytes)
    return path.open("a", encoding="utf-8")
