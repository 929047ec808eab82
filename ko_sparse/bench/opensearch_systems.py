"""The same systems on a live OpenSearch cluster.

BM25: the morpheme field of :mod:`ko_sparse.opensearch.corpus_index` (``nori`` when the cluster has
it, else the embedded engine's kiwipiepy morphemes in a ``whitespace``-analysed field). Sparse: a
``rank_features`` field, filled with vectors encoded here (queried with ``neural_sparse``
``query_tokens``), or by the registered model's ingest pipeline (``--model-id``; queried with the
model id). Cluster-side hybrid: the sparse index also holds the morphemes, and neural-search's
``hybrid`` query fuses both on the cluster (reciprocal rank fusion, the same k = 60 as the embedded
hybrid). Indices have :func:`ko_sparse.opensearch.corpus_index.index_body`'s layout (no ``_meta``: they are
the run's own), are created fresh and deleted afterwards unless ``keep``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from opensearchpy import OpenSearch
from tqdm.auto import tqdm

from ko_sparse.bench.systems import EmbeddedSparse, IndexStats, Matches, SearchOutput, timed_search
from ko_sparse.errors import ClusterError
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.bulk import BulkWriter
from ko_sparse.opensearch.corpus_index import EMBEDDING, MORPHEMES, TEXT, MorphemeField, has_nori, index_body
from ko_sparse.opensearch.pipelines import ingest_pipeline
from ko_sparse.opensearch.query_tokens import QueryTokenLimits, hybrid_reserve, max_clause_count
from ko_sparse.opensearch.rank_features import feature_dict
from ko_sparse.opensearch.search import contributions, ensure_hybrid_pipeline, hybrid_query
from ko_sparse.text.morphemes import MorphemeTokenizer

BULK_BATCH = 200


class BulkIndexError(ClusterError):
    """Some documents were not indexed; the message lists them with the cluster's reasons."""


def bulk_index(client: OpenSearch, index: str, documents, total: int, pipeline: str | None = None) -> None:
    """Index ``(doc_id, source)`` pairs with a progress bar (429s and timeouts retried); raise listing every
    failed document."""
    writer = BulkWriter(client, index, pipeline, chunk_size=BULK_BATCH, max_retries=5)
    actions = ({"_id": doc_id, "_source": source} for doc_id, source in documents)
    failures = []
    with tqdm(total=total, desc=f"Indexing {index}", unit="doc") as bar:
        while batch := list(itertools.islice(actions, BULK_BATCH)):
            failures.extend(writer.write(batch).failures)
            bar.update(len(batch))
    client.indices.refresh(index=index)
    if failures:
        raise BulkIndexError(
            f"{len(failures)} of {total} documents failed to index into {index}: "
            + "; ".join(f"{f.doc_id}: {f.reason}" for f in failures[:10])
            + (" ..." if len(failures) > 10 else "")
        )


def index_size(client: OpenSearch, index: str) -> int:
    return client.indices.stats(index=index, metric="store")["indices"][index]["total"]["store"]["size_in_bytes"]


def explained_hits(client: OpenSearch, index: str, query: dict, doc_ids: list[str]) -> Matches:
    """Lucene's explanation of ``query`` for ``doc_ids``: ``{doc_id: {token: score contribution}}``."""
    if not doc_ids:
        return {}
    body = {
        "size": len(doc_ids),
        "_source": False,
        "explain": True,
        "query": {"bool": {"must": [query], "filter": [{"ids": {"values": doc_ids}}]}},
    }
    matches: Matches = {}
    for hit in client.search(index=index, body=body)["hits"]["hits"]:
        found = matches.setdefault(hit["_id"], {})
        for contribution in contributions(hit["_explanation"]):
            found[contribution.token] = found.get(contribution.token, 0.0) + contribution.score
    return matches


@dataclass
class ClusterIndex:
    """An index this run created; ``delete`` removes it (and its pipeline) unless kept."""

    client: OpenSearch
    name: str
    pipeline: str | None = None

    def delete(self) -> None:
        self.client.indices.delete(index=self.name, ignore_unavailable=True)
        if self.pipeline:
            self.client.ingest.delete_pipeline(id=self.pipeline, ignore=[404])


class OpenSearchBM25:
    name = "bm25"

    def __init__(self, client: OpenSearch, index: str, tokenizer: MorphemeTokenizer | None = None) -> None:
        self.client = client
        self.target = ClusterIndex(client, index)
        self.field = MorphemeField(has_nori(client), tokenizer)
        self.analyzer = self.field.analyzer

    def index(self, corpus: dict[str, str]) -> IndexStats:
        start = time.perf_counter()
        self.client.indices.create(index=self.target.name, body=index_body(None, self.field, None, 1))
        values = self.field.values(list(corpus.values()))
        bulk_index(
            self.client,
            self.target.name,
            ((doc_id, {MORPHEMES: value}) for doc_id, value in zip(corpus, values, strict=True)),
            len(corpus),
        )
        return IndexStats(
            len(corpus),
            time.perf_counter() - start,
            index_size(self.client, self.target.name),
            {"analyzer": self.analyzer},
        )

    def query_body(self, text: str, k: int) -> dict:
        """The ``match`` request for ``text``: raw for nori, else its morphemes (tokenised here)."""
        return {"size": k, "_source": False, "query": self.field.query(text)}

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            hits = self.client.search(index=self.target.name, body=self.query_body(text, k))["hits"]["hits"]
            return {hit["_id"]: hit["_score"] for hit in hits}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        return explained_hits(self.client, self.target.name, self.field.query(text), doc_ids)


class OpenSearchSparse:
    """``rank_features`` + ``neural_sparse``; vectors from the local encoder or the cluster's model. With
    ``morphemes`` the index also holds the BM25 field, for :class:`OpenSearchHybrid`."""

    def __init__(
        self,
        client: OpenSearch,
        index: str,
        local: EmbeddedSparse,
        model_id: str | None = None,
        morphemes: MorphemeField | None = None,
    ) -> None:
        self.client = client
        self.local = local
        self.model_id = model_id
        self.morphemes = morphemes
        self.name = local.name
        self.target = ClusterIndex(client, index, pipeline=f"{index}-pipeline" if model_id else None)
        self.strings = token_strings(local.encoder.tokenizer)
        self.query_tokens_here = model_id is None or local.model.doc_only  # doc-only queries never need the model
        self.limits = QueryTokenLimits(max_clause_count(client))

    def index(self, corpus: dict[str, str]) -> IndexStats:
        start = time.perf_counter()
        sources = [{} for _ in corpus]
        if self.morphemes is not None:
            for source, value in zip(sources, self.morphemes.values(list(corpus.values())), strict=True):
                source[MORPHEMES] = value
        morphemes = self.morphemes or MorphemeField(has_nori(self.client))
        body = index_body(None, morphemes, None, 1)
        if self.model_id:
            pruning = self.local.pruning
            self.client.ingest.put_pipeline(
                id=self.target.pipeline,
                body=ingest_pipeline(
                    self.model_id, (TEXT, EMBEDDING), *((pruning.kind, pruning.value) if pruning else ("none", 0.0))
                ),
            )
            self.client.indices.create(index=self.target.name, body=body)
            documents = ((doc_id, {**s, TEXT: text}) for (doc_id, text), s in zip(corpus.items(), sources, strict=True))
            bulk_index(self.client, self.target.name, documents, len(corpus), pipeline=self.target.pipeline)
            details = {"encoded_by": f"ingest pipeline with model {self.model_id}"}
        else:
            stats = self.local.index(corpus)
            self.client.indices.create(index=self.target.name, body=body)
            documents = (
                (doc_id, {**sources[row], EMBEDDING: feature_dict(self.local.documents[row], self.strings)})
                for row, doc_id in enumerate(corpus)
            )
            bulk_index(self.client, self.target.name, documents, len(corpus))
            details = {**stats.details, "encoded_by": "ko-sparse (pre-encoded rank_features)"}
        seconds = time.perf_counter() - start + (0.0 if self.model_id else self.local.shared_encoding_seconds)
        return IndexStats(len(corpus), seconds, index_size(self.client, self.target.name), details)

    def query(self, text: str, reserve: int = 0) -> dict:
        """``reserve``: boolean clauses the rest of the request takes (a hybrid query's BM25 terms)."""
        if not self.query_tokens_here:
            return {"query_text": text, "model_id": self.model_id}
        tokens = feature_dict(self.local.encode_query(text)[0], self.strings)
        return {"query_tokens": self.limits.apply(tokens, reserve)}

    def clause(self, text: str, reserve: int = 0) -> dict | None:
        """The ``neural_sparse`` clause for ``text`` (None when the model gives the query no token)."""
        query = self.query(text, reserve)
        return None if query.get("query_tokens") == {} else {"neural_sparse": {EMBEDDING: query}}

    def notes(self) -> list[str]:
        return self.limits.notes(self.name)

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            clause = self.clause(text)
            if clause is None:
                return {}  # nothing can match
            hits = self.client.search(index=self.target.name, body={"size": k, "_source": False, "query": clause})
            return {hit["_id"]: hit["_score"] for hit in hits["hits"]["hits"]}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        clause = self.clause(text)
        return {} if clause is None else explained_hits(self.client, self.target.name, clause, doc_ids)


class OpenSearchHybrid:
    """BM25 and a sparse model fused on the cluster: neural-search's ``hybrid`` query over the sparse system's
    index (which holds the morphemes too) through a reciprocal-rank-fusion search pipeline."""

    def __init__(self, sparse: OpenSearchSparse, fusion: str = "rrf") -> None:
        if sparse.morphemes is None:
            raise ValueError("the sparse system must index the morphemes too (morphemes=...)")
        self.sparse = sparse
        self.fusion = fusion
        self.name = sparse.name.replace("sparse", "hybrid-cluster", 1)

    def index(self, corpus: dict[str, str]) -> IndexStats:
        """Nothing to build: it searches the sparse system's index."""
        self.pipeline = ensure_hybrid_pipeline(self.sparse.client, self.fusion)
        size = index_size(self.sparse.client, self.sparse.target.name)
        return IndexStats(len(corpus), 0.0, size, {"index": f"shared with {self.sparse.name}", "fusion": self.fusion})

    def clauses(self, text: str) -> list[dict]:
        morphemes = self.sparse.morphemes
        sparse = self.sparse.clause(text, reserve=hybrid_reserve(morphemes.clauses(text)))
        return [morphemes.query(text), *([sparse] if sparse else [])]

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            hits = self.sparse.client.search(
                index=self.sparse.target.name,
                body={"size": k, "_source": False, "query": hybrid_query(self.clauses(text), k)},
                params={"search_pipeline": self.pipeline},
            )["hits"]["hits"]
            return {hit["_id"]: hit["_score"] for hit in hits}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        """The tokens each side matched (the fused score itself is computed from ranks)."""
        return explained_hits(
            self.sparse.client, self.sparse.target.name, {"bool": {"should": self.clauses(text)}}, doc_ids
        )


def quantised_scores_note() -> str:
    return (
        "rank_features stores document weights with 9 significant bits (rounded down), so OpenSearch's "
        "sparse scores can differ from the embedded engine's by up to 0.4% and near-ties may swap"
    )
