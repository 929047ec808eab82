"""Inverse document frequency per vocabulary id, the query weights of inference-free (doc-only) search,
and ``idf.json``: the same weights keyed by the token strings ML-Commons decodes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from transformers import PreTrainedTokenizerBase

from ko_sparse.errors import DataError
from ko_sparse.model.splade import special_token_ids
from ko_sparse.model.token_strings import token_strings

BATCH = 1024
IDF_FILE = "idf.json"


def document_frequencies(tokenizer: PreTrainedTokenizerBase, documents: Iterable[str]) -> tuple[np.ndarray, int]:
    """How many documents contain each id, and the number of documents."""
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    total = 0
    batch: list[str] = []
    for document in [*documents, None]:
        if document is not None:
            batch.append(document)
        if batch and (document is None or len(batch) == BATCH):
            for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
                counts[np.unique(ids)] += 1
            total += len(batch)
            batch = []
    return counts, total


def idf_vector(tokenizer: PreTrainedTokenizerBase, documents: Iterable[str]) -> np.ndarray:
    """BM25's idf ``log(1 + (N - df + 0.5) / (df + 0.5))`` for every id; special ids get 0."""
    counts, total = document_frequencies(tokenizer, documents)
    if total == 0:
        raise DataError("no documents to compute IDF from")
    idf = np.log1p((total - counts + 0.5) / (counts + 0.5)).astype(np.float32)
    idf[special_token_ids(tokenizer)] = 0.0
    return idf


def idf_json(tokenizer: PreTrainedTokenizerBase, idf: np.ndarray) -> dict[str, float]:
    """``{token string: weight}`` for every id with a weight (special tokens decode to "" and are left out)."""
    return {text: round(float(w), 6) for text, w in zip(token_strings(tokenizer), idf, strict=True) if text and w > 0}
