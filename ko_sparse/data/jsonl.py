"""JSON Lines reading with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ko_sparse.errors import DataError


def parse_record(where: str, line: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """One JSON Lines record as a dict with the ``required`` non-empty string fields; ``where`` (``file:line``)
    starts every error message."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for field in required:
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: field {field!r} is missing or empty")
    return record


def read_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    """Yield each non-blank line of ``path`` as a dict that has the ``required`` non-empty string fields."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield parse_record(f"{path}:{number}", line, required)


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write ``records`` one JSON object per line (UTF-8, Korean kept readable)."""
    with Path(path).open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
