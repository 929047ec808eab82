"""Retrieval systems behind one interface: index a corpus, answer queries with scores and latencies.

Embedded (no server): BM25 with bm25s over Korean morphemes, and the sparse model as an exact dot
product of scipy sparse matrices. Hybrid combines any two runs with reciprocal rank fusion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from sentence_transformers import SparseEncoder

from ko_sparse.bench.morphemes import MorphemeTokenizer
from ko_sparse.model.encode import encode_sparse

Run = dict[str, dict[str, float]]
RRF_K = 60


@dataclass
class IndexStats:
    documents: int
    seconds: float
    size_bytes: int
    details: dict = field(default_factory=dict)

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else float("inf")


@dataclass
class SearchOutput:
    run: Run
    latencies_ms: list[float]


class System(Protocol):
    name: str

    def index(self, corpus: dict[str, str]) -> IndexStats: ...

    def search(self, queries: dict[str, str], k: int) -> SearchOutput: ...


def top_k(doc_ids: list[str], scores: np.ndarray, k: int) -> dict[str, float]:
    """The ``k`` best positive scores as ``{docid: score}``."""
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    return {doc_ids[i]: float(scores[i]) for i in best if scores[i] > 0}


def timed_search(queries: dict[str, str], search_one) -> SearchOutput:
    run, latencies = {}, []
    for qid, text in queries.items():
        start = time.perf_counter()
        run[qid] = search_one(text)
        latencies.append((time.perf_counter() - start) * 1000)
    return SearchOutput(run, latencies)


class EmbeddedBM25:
    """BM25 (Lucene variant, k1 1.2, b 0.75 as OpenSearch) over kiwipiepy content morphemes."""

    name = "bm25"

    def __init__(self, tokenizer: MorphemeTokenizer | None = None) -> None:
        self.tokenizer = tokenizer or MorphemeTokenizer()

    def index(self, corpus: dict[str, str]) -> IndexStats:
        import bm25s

        start = time.perf_counter()
        self.doc_ids = list(corpus)
        tokens = self.tokenizer(corpus.values())
        self.bm25 = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        self.bm25.index(tokens, show_progress=False)
        postings = sum(len(set(doc)) for doc in tokens)
        return IndexStats(len(corpus), time.perf_counter() - start, postings * 8, {"tokenizer": self.tokenizer.name})

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            ids, scores = self.bm25.retrieve(
                [self.tokenizer([text])[0]], k=min(k, len(self.doc_ids)), show_progress=False
            )
            return {self.doc_ids[i]: float(s) for i, s in zip(ids[0], scores[0], strict=True) if s > 0}

        return timed_search(queries, one)


class EmbeddedSparse:
    """The SPLADE model: documents encoded once, each query encoded and scored by an exact dot product."""

    def __init__(self, encoder: SparseEncoder, label: str, max_length: int, batch_size: int = 32) -> None:
        self.encoder = encoder
        self.name = f"sparse[{label}]"
        self.max_length = max_length
        self.batch_size = batch_size

    def index(self, corpus: dict[str, str]) -> IndexStats:
        start = time.perf_counter()
        self.doc_ids = list(corpus)
        self.documents = encode_sparse(
            self.encoder, list(corpus.values()), self.batch_size, self.max_length, show_progress=True
        ).tocsr()
        size = self.documents.data.nbytes + self.documents.indices.nbytes + self.documents.indptr.nbytes
        nnz = self.documents.getnnz(axis=1)
        details = {"mean_terms_per_document": float(nnz.mean()), "max_length": self.max_length}
        return IndexStats(len(corpus), time.perf_counter() - start, size, details)

    def encode_query(self, text: str) -> sp.csr_matrix:
        return encode_sparse(self.encoder, [text], 1, self.max_length)

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            scores = (self.documents @ self.encode_query(text).T).toarray().ravel()
            return top_k(self.doc_ids, scores, k)

        return timed_search(queries, one)


def reciprocal_rank_fusion(first: Run, second: Run, k: int, rrf_k: int = RRF_K) -> Run:
    """``sum 1 / (rrf_k + rank)`` over both rankings (Cormack et al., 2009)."""
    fused: Run = {}
    for qid in first.keys() | second.keys():
        scores: dict[str, float] = {}
        for run in (first, second):
            ranked = sorted(run.get(qid, {}).items(), key=lambda item: -item[1])
            for rank, (doc_id, _) in enumerate(ranked, start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (rrf_k + rank)
        fused[qid] = dict(sorted(scores.items(), key=lambda item: -item[1])[:k])
    return fused


def model_label(path: str) -> str:
    resolved = Path(path)
    return f"{resolved.parent.name}/{resolved.name}" if resolved.name in ("best", "final") else resolved.name
