"""Training data the trainer reads. Notebook recipe: anchor, positive, negative (and difficulty).
Retrieval recipe (``ko-sparse data build --retrieval``): query, positive, one or more ``negative_N``
columns, and optionally ``label`` (teacher scores).

Accepted inputs: a ``datasets.DatasetDict`` saved with ``save_to_disk`` (splits ``train`` and
``validation``; what ``ko-sparse data build`` and the notebook's preparation step write), or JSON
Lines files with the same fields. Evaluation pairs are JSON Lines of ``{source, target}``.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk

from ko_sparse.data.jsonl import read_jsonl
from ko_sparse.errors import DataError

TEXT_COLUMNS = ("anchor", "positive", "negative")
RETRIEVAL_COLUMNS = ("query", "positive")
DIFFICULTY_COLUMN = "difficulty"


def load_triplets(train: str | Path, validation: str | Path | None = None, recipe: str = "notebook") -> DatasetDict:
    """Load and validate training rows from a saved DatasetDict directory or JSONL file(s)."""
    train = Path(train)
    if train.is_dir():
        splits = _load_dataset_dict(train)
    elif train.suffix in (".jsonl", ".json"):
        splits = DatasetDict({"train": _load_jsonl_triplets(train)})
    else:
        raise DataError(f"data.train={str(train)!r}: not a saved DatasetDict directory nor a .jsonl file")
    if validation is not None:
        splits["validation"] = _load_jsonl_triplets(Path(validation))
    for name, split in splits.items():
        _validate(split, f"{train}[{name}]", RETRIEVAL_COLUMNS if recipe == "retrieval" else TEXT_COLUMNS)
    return splits


def load_eval_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Read ``{source, target}`` JSON Lines into ``(source, target)`` tuples."""
    pairs = [(r["source"], r["target"]) for r in read_jsonl(path, required=("source", "target"))]
    if not pairs:
        raise DataError(f"{path}: no evaluation pairs")
    return pairs


def _load_dataset_dict(path: Path) -> DatasetDict:
    if not (path / "dataset_dict.json").is_file():
        raise DataError(f"{path}: not a DatasetDict saved with save_to_disk (no dataset_dict.json)")
    try:
        splits = load_from_disk(str(path))
    except Exception as error:  # datasets raises many types for corrupt folders
        raise DataError(f"{path}: the saved dataset cannot be read ({error})") from error
    if "train" not in splits:
        raise DataError(f"{path}: has splits {list(splits)}, needs 'train' (and usually 'validation')")
    return splits


def _load_jsonl_triplets(path: Path) -> Dataset:
    rows = []
    for record in read_jsonl(path, required=TEXT_COLUMNS):
        row = {column: record[column] for column in TEXT_COLUMNS}
        row[DIFFICULTY_COLUMN] = str(record.get(DIFFICULTY_COLUMN, "unknown"))
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no triplets")
    return Dataset.from_list(rows)


def _validate(split: Dataset, where: str, required: tuple[str, ...]) -> None:
    missing = [column for column in required if column not in split.column_names]
    if missing:
        hint = " (a retrieval data set needs loss.recipe=retrieval)" if "query" in split.column_names else ""
        raise DataError(f"{where}: missing columns {missing} (has {split.column_names}){hint}")
    if len(split) == 0:
        raise DataError(f"{where}: no rows")
    texts = [c for c in split.column_names if c in required or c.startswith("negative")]
    for column in texts:
        for row, value in enumerate(split[column]):
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"{where}: row {row}, column {column!r} is empty or not text")
