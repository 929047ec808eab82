"""Embedded search speed: ko-sparse's inverted index against a doc-major scipy CSR dot product and Seismic.

All three search the same sparse vectors (the medical corpus and its queries encoded by one model,
cut to the sizes of a trained SPLADE model's vectors: the random tiny model activates nearly the
whole vocabulary on long documents), one query at a time, top 10. The inverted index and scipy are
exact; Seismic (pyseismic-lsr) is approximate, so each engine's recall@10 against the exact top 10
is recorded beside its speed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks.common import FULL_MODEL, arguments, default_device, paired_timed, per_second, report, tiny_encoder
from ko_sparse.bench.inverted_index import InvertedIndex
from ko_sparse.data.retrieval_sets import medical
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.pruning import Pruning

K = 10
DOCUMENT_TERMS, QUERY_TERMS = Pruning("top_k", 256), Pruning("top_k", 32)  # a trained model's sizes


def scipy_top_k(documents: sp.csr_matrix, query: sp.csr_matrix) -> np.ndarray:
    """The exact top ``K`` document rows by a doc-major ``documents @ query.T``."""
    scores = (documents @ query.T).toarray().ravel()
    best = np.argpartition(-scores, K - 1)[:K]
    best = best[scores[best] > 0]
    return best[np.argsort(-scores[best])]


class Seismic:
    """pyseismic-lsr over the same vectors, components named by vocabulary id."""

    def __init__(self, documents: sp.csr_matrix) -> None:
        import seismic

        self.string = seismic.get_seismic_string()
        dataset = seismic.SeismicDataset()
        for row in range(documents.shape[0]):
            vector = documents[row]
            dataset.add_document(str(row), vector.indices.astype(self.string), vector.data.astype(np.float32))
        self.index = seismic.SeismicIndex.build_from_dataset(dataset)

    def search(self, query: sp.csr_matrix, query_cut: int = 20, heap_factor: float = 0.7) -> np.ndarray:
        found = self.index.search(
            "q", query.indices.astype(self.string), query.data.astype(np.float32), K, query_cut, heap_factor
        )
        return np.asarray([int(doc_id) for _, _, doc_id in found])


def recall(found: list[np.ndarray], exact: list[np.ndarray]) -> float:
    return float(
        np.mean([len(set(f.tolist()) & set(e.tolist())) / max(len(e), 1) for f, e in zip(found, exact, strict=True)])
    )


def against(ours, theirs, queries: list[sp.csr_matrix], repeat: int) -> tuple[list[float], list[float]]:
    """Queries/s of interleaved passes over all queries (one query at a time) for both engines."""
    ours_s, theirs_s = paired_timed(lambda: [ours(q) for q in queries], lambda: [theirs(q) for q in queries], repeat)
    return per_second(len(queries), ours_s), per_second(len(queries), theirs_s)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny:64x2, documents cut to 256 tokens")
    device = default_device()
    spec, max_length = ("tiny:64x2", 256) if args.quick else (FULL_MODEL, 512)
    encoder = tiny_encoder(spec, max_length, device)
    retrieval = medical()
    documents = encode_sparse(encoder, list(retrieval.corpus.values()), 32, max_length, show_progress=True)
    documents = DOCUMENT_TERMS.apply(documents)
    queries = list(QUERY_TERMS.apply(encode_sparse(encoder, list(retrieval.queries.values()), 32, max_length)))
    index = InvertedIndex(documents)

    def ours(query: sp.csr_matrix) -> np.ndarray:
        return index.search(query, K)[0][0]

    def scipy_search(query: sp.csr_matrix) -> np.ndarray:
        return scipy_top_k(documents, query)

    seismic = Seismic(documents)
    ours_found, exact, seismic_found = ([search(q) for q in queries] for search in (ours, scipy_search, seismic.search))
    ours_vs_scipy, scipy_qps = against(ours, scipy_search, queries, args.repeat)
    ours_vs_seismic, seismic_qps = against(ours, seismic.search, queries, args.repeat)
    shape = dict(
        model=spec,
        documents=documents.shape[0],
        queries=len(queries),
        mean_document_terms=round(documents.getnnz(axis=1).mean(), 1),
        mean_query_terms=round(float(np.mean([q.nnz for q in queries])), 1),
        recall_at_10=recall(ours_found, exact),
    )
    report("search_vs_scipy", ours_vs_scipy, "queries/s", "scipy CSR doc-major dot product", scipy_qps, **shape)
    report(
        "search_vs_seismic",
        ours_vs_seismic,
        "queries/s",
        "pyseismic-lsr (query_cut 20, heap_factor 0.7)",
        seismic_qps,
        peer_recall_at_10=recall(seismic_found, exact),
        **shape,
    )


if __name__ == "__main__":
    main()
