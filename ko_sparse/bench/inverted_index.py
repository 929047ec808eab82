"""The embedded sparse engine: an exact term-at-a-time inverted index over scipy CSR posting lists.

Documents are stored term-major (row ``t`` of ``postings`` is the posting list of vocabulary id
``t``), so a query touches only the posting lists of its own terms instead of scanning every
document vector; a batch of queries is one sparse-sparse product. Scores are exact dot products.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class InvertedIndex:
    """Exact top-k dot-product search over sparse document vectors ``[N, vocab]``."""

    def __init__(self, documents: sp.csr_matrix) -> None:
        self.postings = sp.csr_matrix(documents.T, dtype=np.float32)
        self.postings.sort_indices()

    @property
    def size_bytes(self) -> int:
        return self.postings.data.nbytes + self.postings.indices.nbytes + self.postings.indptr.nbytes

    def scores(self, queries: sp.csr_matrix) -> sp.csr_matrix:
        """``[Q, N]`` dot products, only for documents sharing a term with the query."""
        return (sp.csr_matrix(queries, dtype=np.float32) @ self.postings).tocsr()

    def search(self, queries: sp.csr_matrix, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, the document rows and scores of the ``k`` best positive scores, best first."""
        scores = self.scores(queries)
        results = []
        for row in range(scores.shape[0]):
            start, stop = scores.indptr[row], scores.indptr[row + 1]
            documents, values = scores.indices[start:stop], scores.data[start:stop]
            positive = values > 0
            documents, values = documents[positive], values[positive]
            if len(values) > k:
                best = np.argpartition(-values, k - 1)[:k]
                documents, values = documents[best], values[best]
            order = np.argsort(-values, kind="stable")
            results.append((documents[order], values[order]))
        return results
