"""A text pool ranked by a sparse model's dot product (negative mining with the current model)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.splade import load_encoder

DEPTH = 200


def sparse_ranker(model: str, pool: list[str], depth: int = DEPTH) -> Callable[[list[str]], list[list[int]]]:
    """For each anchor, the pool indices with a positive score, best first (at most ``depth``)."""
    encoder = load_encoder(model, setting="--model")
    documents = encode_sparse(encoder, pool, 64, show_progress=True)

    def rank(anchors: list[str]) -> list[list[int]]:
        scores = (encode_sparse(encoder, anchors, 64) @ documents.T).toarray()
        top = np.argsort(-scores, axis=1)[:, :depth]
        return [[int(i) for i in row if scores[r, i] > 0] for r, row in enumerate(top)]

    return rank
