"""The embedded inverted index returns exactly the dense dot product's top k."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ko_sparse.bench.inverted_index import InvertedIndex


def random_sparse(rows: int, seed: int, density: float = 0.02) -> sp.csr_matrix:
    return sp.random(rows, 500, density=density, format="csr", dtype=np.float32, random_state=seed)


def test_top_k_equals_the_dense_dot_product():
    documents, queries = random_sparse(300, 0), random_sparse(20, 1, density=0.01)
    dense = (queries @ documents.T).toarray()
    for row, (ids, scores) in enumerate(InvertedIndex(documents).search(queries, k=10)):
        expected = np.sort(dense[row][dense[row] > 0])[::-1][:10]
        np.testing.assert_allclose(scores, expected, rtol=1e-6)
        np.testing.assert_allclose(dense[row][ids], scores, rtol=1e-6)


def test_only_documents_sharing_a_term_are_returned():
    documents = sp.csr_matrix(np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0.5, 3.0]], dtype=np.float32))
    queries = sp.csr_matrix(np.array([[0, 1.0, 0], [0, 0, 0]], dtype=np.float32))
    (ids, scores), (no_ids, _) = InvertedIndex(documents).search(queries, k=5)
    assert ids.tolist() == [1, 2] and scores.tolist() == [2.0, 0.5]
    assert no_ids.size == 0
