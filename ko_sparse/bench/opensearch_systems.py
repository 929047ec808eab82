"""The same systems on a live OpenSearch cluster.

BM25: ``nori`` on the raw text when the cluster has the analysis-nori plugin, else the same
kiwipiepy morphemes as the embedded engine, pre-tokenised into a ``whitespace``-analysed field.
Sparse: a ``rank_features`` field, filled with vectors encoded here (queried with ``neural_sparse``
``query_tokens``), or by the registered model's ingest pipeline (``--model-id``; queried with the
model id). Indices are created fresh and deleted afterwards unless ``keep``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opensearchpy import OpenSearch, helpers
from tqdm.auto import tqdm

from ko_sparse.bench.systems import EmbeddedSparse, IndexStats, SearchOutput, timed_search
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.pipelines import ingest_pipeline
from ko_sparse.opensearch.query_tokens import QueryTokenLimits
from ko_sparse.text.morphemes import MorphemeTokenizer

TEXT, MORPHEMES, EMBEDDING = "text", "morphemes", "embedding"


class BulkIndexError(RuntimeError):
    """Some documents were not indexed; the message lists them with the cluster's reasons."""


def bulk_index(client: OpenSearch, index: str, documents, total: int, pipeline: str | None = None) -> None:
    """Index ``(doc_id, source)`` pairs with a progress bar; raise listing every failed document."""
    actions = ({"_index": index, "_id": doc_id, "_source": source} for doc_id, source in documents)
    failures = []
    stream = helpers.streaming_bulk(
        client,
        actions,
        chunk_size=200,
        raise_on_error=False,
        raise_on_exception=False,
        max_retries=3,
        pipeline=pipeline,
    )
    for ok, item in tqdm(stream, total=total, desc=f"Indexing {index}", unit="doc"):
        if not ok:
            detail = next(iter(item.values()))
            failures.append(f"{detail.get('_id')}: {detail.get('error')}")
    client.indices.refresh(index=index)
    if failures:
        raise BulkIndexError(
            f"{len(failures)} of {total} documents failed to index into {index}: "
            + "; ".join(failures[:10])
            + (" ..." if len(failures) > 10 else "")
        )


def max_clause_count(client: OpenSearch) -> int:
    """``indices.query.bool.max_clause_count`` (Lucene's limit on boolean clauses, 1,024 by default)."""
    settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    for scope in ("transient", "persistent", "defaults"):
        value = settings[scope].get("indices.query.bool.max_clause_count")
        if value is not None:
            return int(value)
    return 1024


def index_size(client: OpenSearch, index: str) -> int:
    return client.indices.stats(index=index, metric="store")["indices"][index]["total"]["store"]["size_in_bytes"]


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
        self.tokenizer = tokenizer or MorphemeTokenizer()
        plugins = {row["component"] for row in client.cat.plugins(format="json")}
        self.nori = "analysis-nori" in plugins or "opensearch-analysis-nori" in plugins
        self.analyzer = "nori" if self.nori else f"whitespace over {self.tokenizer.name}"

    def index(self, corpus: dict[str, str]) -> IndexStats:
        start = time.perf_counter()
        field_spec = {"type": "text", "analyzer": "nori"} if self.nori else {"type": "text", "analyzer": "whitespace"}
        self.client.indices.create(
            index=self.target.name,
            body={
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": {"properties": {MORPHEMES: field_spec}},
            },
        )
        texts = list(corpus.values())
        values = texts if self.nori else [" ".join(tokens) for tokens in self.tokenizer(texts)]
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
        value = text if self.nori else " ".join(self.tokenizer([text])[0])
        return {"size": k, "_source": False, "query": {"match": {MORPHEMES: value}}}

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            hits = self.client.search(index=self.target.name, body=self.query_body(text, k))["hits"]["hits"]
            return {hit["_id"]: hit["_score"] for hit in hits}

        return timed_search(queries, one)


class OpenSearchSparse:
    """``rank_features`` + ``neural_sparse``; vectors from the local encoder or the cluster's model."""

    def __init__(self, client: OpenSearch, index: str, local: EmbeddedSparse, model_id: str | None = None) -> None:
        self.client = client
        self.local = local
        self.model_id = model_id
        self.name = local.name
        self.target = ClusterIndex(client, index, pipeline=f"{index}-pipeline" if model_id else None)
        self.strings = token_strings(local.encoder.tokenizer)
        self.query_tokens_here = model_id is None or local.model.doc_only  # doc-only queries never need the model
        self.limits = QueryTokenLimits(max_clause_count(client))

    def _tokens(self, row) -> dict[str, float]:
        return {self.strings[i]: float(w) for i, w in zip(row.indices, row.data, strict=True) if self.strings[i]}

    def index(self, corpus: dict[str, str]) -> IndexStats:
        start = time.perf_counter()
        body = {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {EMBEDDING: {"type": "rank_features"}}},
        }
        if self.model_id:
            pruning = self.local.pruning
            self.client.ingest.put_pipeline(
                id=self.target.pipeline,
                body=ingest_pipeline(
                    self.model_id, (TEXT, EMBEDDING), *((pruning.kind, pruning.value) if pruning else ("none", 0.0))
                ),
            )
            body["mappings"]["properties"][TEXT] = {"type": "text", "index": False}
            self.client.indices.create(index=self.target.name, body=body)
            documents = ((doc_id, {TEXT: text}) for doc_id, text in corpus.items())
            bulk_index(self.client, self.target.name, documents, len(corpus), pipeline=self.target.pipeline)
            details = {"encoded_by": f"ingest pipeline with model {self.model_id}"}
        else:
            stats = self.local.index(corpus)
            self.client.indices.create(index=self.target.name, body=body)
            documents = (
                (doc_id, {EMBEDDING: self._tokens(self.local.documents[row])}) for row, doc_id in enumerate(corpus)
            )
            bulk_index(self.client, self.target.name, documents, len(corpus))
            details = {**stats.details, "encoded_by": "ko-sparse (pre-encoded rank_features)"}
        seconds = time.perf_counter() - start + (0.0 if self.model_id else self.local.shared_encoding_seconds)
        return IndexStats(len(corpus), seconds, index_size(self.client, self.target.name), details)

    def query(self, text: str) -> dict:
        if not self.query_tokens_here:
            return {"query_text": text, "model_id": self.model_id}
        return {"query_tokens": self.limits.apply(self._tokens(self.local.encode_query(text)[0]))}

    def notes(self) -> list[str]:
        return self.limits.notes(self.name)

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            query = self.query(text)
            if query.get("query_tokens") == {}:
                return {}  # the model gives this query no token: nothing can match
            hits = self.client.search(
                index=self.target.name,
                body={"size": k, "_source": False, "query": {"neural_sparse": {EMBEDDING: query}}},
            )["hits"]["hits"]
            return {hit["_id"]: hit["_score"] for hit in hits}

        return timed_search(queries, one)


def quantised_scores_note() -> str:
    return (
        "rank_features stores document weights with 9 significant bits (rounded down), so OpenSearch's "
        "sparse scores can differ from the embedded engine's by up to 0.4% and near-ties may swap"
    )
