"""The same systems on a live OpenSearch cluster.

BM25: the morpheme field of :mod:`ko_sparse.opensearch.corpus_index` (``nori`` when the cluster has it, else the
embedded engine's kiwipiepy morphemes in a ``whitespace``-analysed field). Sparse: a ``rank_features`` field, filled
with vectors encoded here (queried with ``neural_sparse`` ``query_tokens``), or by the registered model's ingest
pipeline (``--model-id``; queried with the model id); or (``--method seismic``, :class:`SeismicMethod`) a
``sparse_vector`` field searched approximately by SEISMIC, filled and queried through
:mod:`ko_sparse.opensearch.seismic`'s exact id remapping, force-merged into one segment and warmed up as ``ko-sparse
index --method seismic --force-merge`` does. Dense: a ``knn_vector`` field (k-NN plugin) filled with rows encoded
here, queried with ``knn``, exactly: no HNSW graph is built, so every vector is scored, as the embedded engine does
(a benchmark compares models, not an approximation's recall). Cluster-side hybrid: one index holds every part's
field (the sparse index, else the dense one, also holds the morphemes and the dense rows), and neural-search's
``hybrid`` query fuses them on the cluster (reciprocal rank fusion, the same k = 60 as the embedded hybrid). Indices
have :func:`ko_sparse.opensearch.corpus_index.index_body`'s layout (no ``_meta``: they are the run's own), are
created fresh and deleted afterwards unless ``keep``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from opensearchpy import OpenSearch
from tqdm.auto import tqdm

from ko_sparse.bench.systems import (
    EmbeddedDense,
    EmbeddedSparse,
    IndexStats,
    Matches,
    SearchOutput,
    hybrid_name,
    timed_search,
)
from ko_sparse.errors import ClusterError, InputError
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.bulk import BulkWriter
from ko_sparse.opensearch.corpus_index import EMBEDDING, MORPHEMES, TEXT, MorphemeField, has_nori, index_body
from ko_sparse.opensearch.pipelines import ingest_pipeline
from ko_sparse.opensearch.query_tokens import QueryTokenLimits, hybrid_reserve, max_clause_count
from ko_sparse.opensearch.rank_features import MIN_NORMAL, feature_dict
from ko_sparse.opensearch.search import contributions, ensure_hybrid_pipeline, hybrid_query
from ko_sparse.opensearch.seismic import SeismicParameters, TokenSlots, query_clause
from ko_sparse.text.morphemes import MorphemeTokenizer
from ko_sparse.workflows.indexing import make_searchable
from ko_sparse.workflows.sources import SeismicDocuments

BULK_BATCH = 200
DENSE = "dense"  # the knn_vector field


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


def with_dense(body: dict, dimension: int) -> dict:
    """``body`` (:func:`index_body`'s layout) with the ``knn_vector`` field: cosine similarity (the rows are
    normalised, so inner product would rank the same; cosinesimil's score ``(1 + cos) / 2`` maps back to the
    cosine exactly), faiss HNSW as a production index would map it, but no graph built (``approximate_threshold``
    -1): each ``knn`` query scores every vector exactly."""
    body["settings"] |= {"index.knn": True, "index.knn.advanced.approximate_threshold": -1}
    body["mappings"]["_source"]["excludes"].append(DENSE)
    body["mappings"]["properties"][DENSE] = {
        "type": "knn_vector",
        "dimension": dimension,
        "space_type": "cosinesimil",
        "method": {"name": "hnsw", "engine": "faiss"},
    }
    return body


def cosine(score: float) -> float:
    """The cosine behind a cosinesimil ``_score`` (``(1 + cos) / 2``)."""
    return 2.0 * score - 1.0


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


@dataclass(frozen=True)
class SeismicMethod:
    """``bench --method seismic``: the field's parameters as given (the rest chosen for the corpus, as ``ko-sparse
    index`` does) and the ``method_parameters`` each query sends."""

    parameters: SeismicParameters = field(default_factory=SeismicParameters)
    method_parameters: dict = field(default_factory=dict)


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
    ``morphemes`` the index also holds the BM25 field, for :class:`OpenSearchHybrid`. With ``seismic`` a
    ``sparse_vector`` field (local vectors only: the ingest pipeline's raw ids cannot be remapped)."""

    def __init__(
        self,
        client: OpenSearch,
        index: str,
        local: EmbeddedSparse,
        model_id: str | None = None,
        morphemes: MorphemeField | None = None,
        dense: EmbeddedDense | None = None,
        seismic: SeismicMethod | None = None,
    ) -> None:
        if seismic is not None and model_id:
            raise InputError(
                "--method seismic with --model-id: the ingest pipeline writes the model's raw token ids, which a "
                "sparse_vector field cannot take above 32,767; drop --model-id (vectors are encoded and remapped here)"
            )
        self.client = client
        self.seismic = seismic
        self.local = local
        self.model_id = model_id
        self.morphemes = morphemes
        self.dense = dense
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
        stats = None
        if self.seismic is not None:
            stats = self.local.index(corpus)  # the vectors first: the field's defaults depend on them
            body = index_body(None, morphemes, None, 1, seismic=self.seismic_parameters(len(corpus)))
        dense_seconds = 0.0  # the dense rows' encoding, when done here: the dense system's cost, not this one's
        if self.dense is not None:
            encoded_before = self.dense.doc_ids == list(corpus)
            dense_seconds = 0.0 if encoded_before else self.dense.index(corpus).seconds
            body = with_dense(body, self.dense.encoder.dimension)
            for source, row in zip(sources, self.dense.vectors, strict=True):
                source[DENSE] = row.tolist()
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
            stats = stats or self.local.index(corpus)
            self.client.indices.create(index=self.target.name, body=body)
            vectors = self.field_values()
            documents = ((doc_id, {**sources[row], EMBEDDING: vectors[row]}) for row, doc_id in enumerate(corpus))
            bulk_index(self.client, self.target.name, documents, len(corpus))
            details = {**stats.details, "encoded_by": "ko-sparse (pre-encoded rank_features)"}
            if self.seismic is not None:
                ready = make_searchable(self.client, self.target.name, force_merge=True)
                details |= {
                    "encoded_by": "ko-sparse (pre-encoded, token ids remapped to the sparse_vector field's)",
                    "method": "seismic",
                    "method_parameters": self.parameters.effective(),
                    "query_method_parameters": self.seismic.method_parameters,
                    "token_slots": None if self.slots.identity else len(self.slots.ids),
                    "seismic_ready": ready,
                }
        seconds = time.perf_counter() - start - dense_seconds
        seconds += 0.0 if self.model_id else self.local.shared_encoding_seconds
        return IndexStats(len(corpus), seconds, index_size(self.client, self.target.name), details)

    def seismic_parameters(self, documents: int) -> SeismicParameters:
        """The field's parameters: those given, the rest chosen for the corpus and its largest weight."""
        peak = float(self.local.documents.max()) if self.local.documents.nnz else None
        self.parameters = self.seismic.parameters.with_defaults(documents, 1, peak)
        self.slots = TokenSlots.for_vocabulary(len(self.strings), None)
        return self.parameters

    def field_values(self) -> list[dict[str, float]]:
        """Each document's ``embedding`` value: rank_features by token string, or (seismic) by remapped field id,
        a document the field cannot hold exactly refused with the reason."""
        if self.seismic is None:
            return [
                feature_dict(self.local.documents[row], self.strings) for row in range(self.local.documents.shape[0])
            ]
        ceiling = self.parameters.ceilings[0]
        values = SeismicDocuments(self.slots, ceiling, self.strings).values(self.local.documents)
        refused = [(self.local.doc_ids[row], value) for row, value in enumerate(values) if isinstance(value, str)]
        if refused:
            raise BulkIndexError(
                f"{len(refused)} documents cannot go into a sparse_vector field exactly, e.g. {refused[0][0]}: "
                f"{refused[0][1]}"
            )
        return values

    def query(self, text: str, reserve: int = 0) -> dict:
        """``reserve``: boolean clauses the rest of the request takes (a hybrid query's BM25 terms)."""
        if not self.query_tokens_here:
            return {"query_text": text, "model_id": self.model_id}
        row = self.local.encode_query(text)[0]
        if self.seismic is None:
            return {"query_tokens": self.limits.apply(feature_dict(row, self.strings), reserve)}
        weights = {
            int(i): float(w) for i, w in zip(row.indices, row.data, strict=True) if self.strings[i] and w >= MIN_NORMAL
        }
        tokens = self.limits.apply(self.slots.query(weights), reserve)
        return query_clause(tokens, self.parameters.ceilings[1], self.seismic.method_parameters)

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
        matches = {} if clause is None else explained_hits(self.client, self.target.name, clause, doc_ids)
        if self.seismic is None:
            return matches
        return {doc_id: {self.token_name(t): score for t, score in found.items()} for doc_id, found in matches.items()}

    def token_name(self, field_id: str) -> str:
        """A seismic explanation's field id as the token string (other labels as they are)."""
        return self.strings[self.slots.model_id(int(field_id))] if field_id.isdigit() else field_id


class OpenSearchDense:
    """``knn_vector`` + ``knn``, exact (see :func:`with_dense`), rows encoded by the local dense system; scores
    are reported as the cosine, as the embedded engine's. With ``morphemes`` the index also holds the BM25
    field, for :class:`OpenSearchHybrid`."""

    def __init__(
        self, client: OpenSearch, index: str, local: EmbeddedDense, morphemes: MorphemeField | None = None
    ) -> None:
        self.client = client
        self.local = local
        self.morphemes = morphemes
        self.name = local.name
        self.target = ClusterIndex(client, index)

    def index(self, corpus: dict[str, str]) -> IndexStats:
        start = time.perf_counter()
        encoded_before = self.local.doc_ids == list(corpus)  # by a sparse index holding the dense rows too
        stats = self.local.index(corpus)
        morphemes = self.morphemes or MorphemeField(has_nori(self.client))
        self.client.indices.create(
            index=self.target.name, body=with_dense(index_body(None, morphemes, None, 1), self.local.encoder.dimension)
        )
        values = self.morphemes.values(list(corpus.values())) if self.morphemes is not None else None
        documents = (
            (doc_id, {DENSE: self.local.vectors[row].tolist(), **({MORPHEMES: values[row]} if values else {})})
            for row, doc_id in enumerate(corpus)
        )
        bulk_index(self.client, self.target.name, documents, len(corpus))
        details = {**stats.details, "search": "OpenSearch knn_vector, exact (cosinesimil, no HNSW graph built)"}
        seconds = time.perf_counter() - start + (stats.seconds if encoded_before else 0.0)
        return IndexStats(len(corpus), seconds, index_size(self.client, self.target.name), details)

    def clause(self, text: str, k: int) -> dict:
        return {"knn": {DENSE: {"vector": self.local.encode_query(text).tolist(), "k": k}}}

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            body = {"size": k, "_source": False, "query": self.clause(text, k)}
            hits = self.client.search(index=self.target.name, body=body)["hits"]["hits"]
            return {hit["_id"]: cosine(hit["_score"]) for hit in hits}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        return self.local.explain(text, doc_ids)


class OpenSearchHybrid:
    """BM25, a sparse model and a dense model (any two or all three) fused on the cluster: neural-search's
    ``hybrid`` query over one index holding every part's field (the sparse system's, else the dense one's)
    through a reciprocal-rank-fusion search pipeline."""

    def __init__(
        self,
        sparse: OpenSearchSparse | None = None,
        fusion: str = "rrf",
        dense: OpenSearchDense | None = None,
        bm25: bool = True,
    ) -> None:
        host = sparse if sparse is not None else dense
        if host is None or [bm25, sparse is not None, dense is not None].count(True) < 2:
            raise ValueError("a hybrid fuses at least two of bm25, sparse and dense")
        if bm25 and host.morphemes is None:
            raise ValueError("the index must hold the morphemes too (morphemes=...)")
        if sparse is not None and dense is not None and sparse.dense is not dense.local:
            raise ValueError("the sparse system's index must hold the dense rows too (dense=...)")
        self.host, self.sparse, self.dense, self.bm25, self.fusion = host, sparse, dense, bm25, fusion
        parts = [*(["bm25"] if bm25 else []), *(system.name for system in (sparse, dense) if system is not None)]
        self.name = hybrid_name(parts, "hybrid-cluster")

    def index(self, corpus: dict[str, str]) -> IndexStats:
        """Nothing to build: it searches the sparse (else the dense) system's index."""
        self.pipeline = ensure_hybrid_pipeline(self.host.client, self.fusion)
        size = index_size(self.host.client, self.host.target.name)
        return IndexStats(len(corpus), 0.0, size, {"index": f"shared with {self.host.name}", "fusion": self.fusion})

    def token_clauses(self, text: str) -> list[dict]:
        """The BM25 and sparse clauses (those whose matched tokens can be explained)."""
        clauses = [self.host.morphemes.query(text)] if self.bm25 else []
        if self.sparse is not None:
            reserve = hybrid_reserve(self.sparse.morphemes.clauses(text)) if self.bm25 else 0
            sparse = self.sparse.clause(text, reserve=reserve)
            clauses += [sparse] if sparse else []
        return clauses

    def search(self, queries: dict[str, str], k: int) -> SearchOutput:
        def one(text: str) -> dict[str, float]:
            clauses = [*self.token_clauses(text), *([self.dense.clause(text, k)] if self.dense else [])]
            hits = self.host.client.search(
                index=self.host.target.name,
                body={"size": k, "_source": False, "query": hybrid_query(clauses, k)},
                params={"search_pipeline": self.pipeline},
            )["hits"]["hits"]
            return {hit["_id"]: hit["_score"] for hit in hits}

        return timed_search(queries, one)

    def explain(self, text: str, doc_ids: list[str]) -> Matches:
        """The tokens the BM25 and sparse sides matched (the fused score itself is computed from ranks)."""
        return explained_hits(
            self.host.client, self.host.target.name, {"bool": {"should": self.token_clauses(text)}}, doc_ids
        )


def quantised_scores_note(seismic: SeismicMethod | None = None) -> str:
    if seismic is not None:
        return (
            "sparse: SEISMIC (sparse_vector, approximate), one force-merged segment; weights are stored as bytes "
            "of [0, quantization_ceiling], so scores differ from the embedded engine's exact ones by that rounding "
            "and near-ties may swap (a corpus below approximate_threshold documents is searched exactly)"
        )
    return (
        "rank_features stores document weights with 9 significant bits (rounded down), so OpenSearch's "
        "sparse scores can differ from the embedded engine's by up to 0.4% and near-ties may swap"
    )
