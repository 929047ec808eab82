"""Query-side IDF weights for doc-only (inference-free) search, keyed as ML-Commons decodes tokens."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from ko_sparse.data.errors import DataError
from ko_sparse.export.token_strings import token_strings
from ko_sparse.model.splade import special_token_ids

IDF_FILE = "idf.json"


def document_frequencies(tokenizer: PreTrainedTokenizerBase, documents: Iterable[str]) -> tuple[np.ndarray, int]:
    """How many documents contain each id, and the number of documents."""
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    total = 0
    batch: list[str] = []
    for document in documents:
        batch.append(document)
        if len(batch) == 1024:
            total += _count(tokenizer, batch, counts)
            batch = []
    total += _count(tokenizer, batch, counts)
    return counts, total


def _count(tokenizer: PreTrainedTokenizerBase, batch: list[str], counts: np.ndarray) -> int:
    if batch:
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            counts[np.unique(ids)] += 1
    return len(batch)


def idf_weights(tokenizer: PreTrainedTokenizerBase, documents: Iterable[str]) -> dict[str, float]:
    """BM25's idf ``log(1 + (N - df + 0.5) / (df + 0.5))`` for every non-special token string."""
    counts, total = document_frequencies(tokenizer, documents)
    if total == 0:
        raise DataError("the IDF corpus has no documents")
    special = set(special_token_ids(tokenizer))
    weights: dict[str, float] = {}
    for token_id, text in enumerate(token_strings(tokenizer)):
        if token_id not in special and text:
            df = int(counts[token_id])
            weights[text] = round(math.log(1.0 + (total - df + 0.5) / (df + 0.5)), 6)
    return weights


def load_idf(path: str | Path) -> dict[str, float]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
