"""The document and query lengths a model was made for, recorded in its folder.

``ko-sparse train`` writes ``ko_sparse_lengths.json`` next to the saved model; ``package``, ``bench``,
``index``, ``search`` and ``expand`` truncate at these lengths unless told otherwise. A model without the
record (an older one, or any SparseEncoder) falls back to its ``max_seq_length`` for both. A model given by
Hub id has its record read from the Hub (or its cache) like its other files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ko_sparse.errors import ModelLoadError

LENGTHS_FILE = "ko_sparse_lengths.json"


@dataclass(frozen=True)
class Lengths:
    """Tokens kept of a document and of a query."""

    document: int
    query: int

    def save(self, folder: str | Path) -> None:
        Path(folder, LENGTHS_FILE).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    def override(self, document: int | None = None, query: int | None = None) -> Lengths:
        """These lengths with the ones given (a command's ``--max-length`` / ``--query-length``) in place."""
        return replace(self, document=document or self.document, query=query or self.query)


def recorded_lengths(model: str | Path, fallback: int) -> Lengths:
    """The lengths recorded with ``model`` (a folder or a Hub id), else ``fallback`` (its ``max_seq_length``)."""
    from ko_sparse.model.hub import model_file

    found = model_file(str(model), LENGTHS_FILE)
    if found is None:
        return Lengths(fallback, fallback)
    path = Path(found)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return Lengths(int(stored["document"]), int(stored["query"]))
    except (ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f'{path}: expected {{"document": N, "query": N}} ({error})') from error
