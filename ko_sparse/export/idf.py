"""Query-side IDF weights for doc-only (inference-free) search, keyed as ML-Commons decodes tokens."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from transformers import PreTrainedTokenizerBase

from ko_sparse.export.token_strings import token_strings
from ko_sparse.model.idf import idf_vector

IDF_FILE = "idf.json"


def idf_json(tokenizer: PreTrainedTokenizerBase, idf: np.ndarray) -> dict[str, float]:
    """``{token string: weight}`` for every id with a weight (special tokens decode to "" and are left out)."""
    return {text: round(float(w), 6) for text, w in zip(token_strings(tokenizer), idf, strict=True) if text and w > 0}


def idf_weights(tokenizer: PreTrainedTokenizerBase, documents: Iterable[str]) -> dict[str, float]:
    """BM25 IDF of every non-special token string over ``documents``."""
    return idf_json(tokenizer, idf_vector(tokenizer, documents))
