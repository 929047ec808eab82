"""Corpus documents for mining: .jsonl (``text``, optional ``title``), plain text (a line each), or a
Hugging Face dataset (``id:config,...``; every text column of a row joined)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ko_sparse.data.jsonl import read_jsonl
from ko_sparse.errors import DataError


def read_documents(location: str, setting: str = "--corpus") -> Iterator[str]:
    """Documents at ``location``; ``setting`` names the option in errors."""
    path = Path(location)
    if path.suffix == ".jsonl":
        for record in read_jsonl(path, required=("text",)):
            yield f"{record['title']} {record['text']}" if record.get("title") else record["text"]
    elif path.is_file():
        with path.open(encoding="utf-8") as lines:
            yield from (line.strip() for line in lines if line.strip())
    elif path.suffix or path.exists():
        raise DataError(f"{setting} {location}: file not found")
    else:
        from ko_sparse.data.hub import load_hub_rows

        for row in load_hub_rows(location):
            text = " ".join(str(v) for v in row.values() if isinstance(v, str) and v.strip())
            if text:
                yield text
