"""Searching an index built by ``ko-sparse index``: sparse, BM25 or hybrid, with why each hit came back.

Sparse: the query's tokens (encoded by the cluster's model through ``_predict``, or here by
:class:`ko_sparse.workflows.query_encoder.LocalQueryEncoder`: this module imports no torch),
within :class:`QueryTokenLimits`, sent as ``neural_sparse`` ``query_tokens``. BM25: a ``match`` on the
morpheme field. Hybrid: neural-search's ``hybrid`` query over both, fused on the cluster by a search
pipeline (reciprocal rank fusion with ``score-ranker-processor``, or min-max normalisation and the
arithmetic mean with ``normalization-processor``), created when missing.

Why a hit came back is Lucene's own explanation (``explain``): for sparse, one ``query weight x stored
document weight`` term per matched token, which add up to the hit's score; for BM25, each matched
morpheme's term score.

A seismic index (:mod:`ko_sparse.opensearch.seismic`) is queried by token id: the query's ids go through
the index's remapping, the weights are scaled within the field's search quantisation ceiling (with the
same factor as ``boost``, so scores keep their scale), and ``method_parameters`` (``k``, ``top_n``,
``heap_factor``, ``filter``) go with the ``neural_sparse`` query. Its explanations give each matched
token's quantised bytes, turned back into weights here.

An exact index built with ``--two-phase`` (:mod:`ko_sparse.opensearch.two_phase`) is searched through its
default two-phase pipeline unless a request names ``search_pipeline=_none`` (:class:`PipelineChoice`).

A search refused for a passing reason (a lost connection, 429, 5xx) is sent again after 1 and 2 s
(:func:`ko_sparse.opensearch.retry.with_backoff`), and the result notes the retry. Partial results are
refused (``allow_partial_search_results=false``), so a shard that did not answer is such a refusal rather
than hits silently missing. In the ml-cluster fault tests, searches in flight when a data node was killed
failed (500, ``node_not_connected_exception``) or, once, came back different (most likely a shard missing);
sent again, the replicas answered in full.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

from opensearchpy import NotFoundError, OpenSearch

from ko_sparse.opensearch.corpus_index import EMBEDDING, MORPHEMES, TEXT, TITLE, MorphemeField
from ko_sparse.opensearch.ml_commons import MLCommons
from ko_sparse.opensearch.query_tokens import QueryTokenLimits, hybrid_reserve
from ko_sparse.opensearch.retry import failure_reason, with_backoff
from ko_sparse.opensearch.seismic import QUANTIZATION_LEVELS, SeismicParameters, TokenSlots, query_clause
from ko_sparse.opensearch.two_phase import BYPASS

MODES = ("sparse", "bm25", "hybrid")
RRF_RANK_CONSTANT = 60  # as the embedded engine's reciprocal rank fusion
SEARCH_ATTEMPTS = 3  # a search in flight when a data node dies can fail whole (500, node_not_connected_exception)
HYBRID_PIPELINES = {
    "rrf": {
        "description": "ko-sparse hybrid: reciprocal rank fusion of BM25 and sparse (k = 60)",
        "phase_results_processors": [
            {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": RRF_RANK_CONSTANT}}}
        ],
    },
    "min_max": {
        "description": "ko-sparse hybrid: min-max normalised BM25 and sparse scores, arithmetic mean",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {"technique": "arithmetic_mean"},
                }
            }
        ],
    },
}
LINEAR = re.compile(r"^Linear function on the (?P<field>\S+) field for the (?P<token>.*) feature, computed as w \* S")
TERM = re.compile(rf"^weight\({MORPHEMES}:(?P<token>.*?) in \d+\)")
SPARSE_ANN = re.compile(r"^sparse_ann score for doc \d+ in field '(?P<field>[^']+)'")
ANN_TOKEN = re.compile(r"^token '(?P<token>\d+)' contribution: query_weight=(?P<q>\d+) \* doc_weight=(?P<d>\d+)")


def hybrid_pipeline_name(fusion: str) -> str:
    return f"ko-sparse-hybrid-{fusion.replace('_', '-')}"


def ensure_hybrid_pipeline(client: OpenSearch, fusion: str) -> str:
    """The search pipeline for ``fusion`` (created when missing); returns its name."""
    name = hybrid_pipeline_name(fusion)
    try:
        client.search_pipeline.get(id=name)
    except NotFoundError:
        client.search_pipeline.put(id=name, body=HYBRID_PIPELINES[fusion])
    return name


def hybrid_query(clauses: list[dict], k: int) -> dict:
    """neural-search's ``hybrid`` query; its sub-queries are fused by the search pipeline (never send it
    without one: the raw scores carry the processor's delimiters)."""
    return {"hybrid": {"queries": clauses, "pagination_depth": max(k, 10)}}


@dataclass(frozen=True)
class Contribution:
    """One matched token: its share of the hit's score (sparse: query weight x stored document weight)."""

    token: str
    score: float
    query_weight: float | None = None
    document_weight: float | None = None
    source: str = "sparse"  # sparse | bm25


@dataclass
class Hit:
    rank: int
    doc_id: str
    score: float
    title: str = ""
    text: str = ""
    contributions: list[Contribution] = field(default_factory=list)

    @property
    def explained(self) -> float:
        return sum(c.score for c in self.contributions)


@dataclass
class SearchResult:
    query: str
    mode: str
    hits: list[Hit]
    query_tokens: dict[str, float] = field(default_factory=dict)  # sparse and hybrid: what was sent
    query_terms: list[str] = field(default_factory=list)  # bm25 and hybrid: the morphemes matched against
    milliseconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def contributions(explanation: dict) -> list[Contribution]:
    """The matched tokens in a Lucene explanation: ``neural_sparse`` linear functions and BM25 term weights."""
    found = []
    description = explanation.get("description", "")
    linear, term = LINEAR.match(description), TERM.match(description)
    ann = SPARSE_ANN.match(description)
    if ann and ann["field"] == EMBEDDING:
        found.extend(ann_contributions(explanation))
    elif linear and linear["field"] == EMBEDDING:
        weight, stored = (detail["value"] for detail in explanation["details"][:2])
        found.append(Contribution(linear["token"], explanation["value"], weight, stored, "sparse"))
    elif term:
        found.append(Contribution(term["token"], explanation["value"], source="bm25"))
    else:
        for detail in explanation.get("details", []):
            found.extend(contributions(detail))
    return found


def ann_contributions(explanation: dict) -> list[Contribution]:
    """A SEISMIC segment's explanation: each listed token's byte product, rescaled to the score's scale; the
    tokens it does not list (it lists the ``top_n`` strongest of the query) as one remainder."""
    details = {detail["description"].split(" (")[0].split(":")[0]: detail for detail in explanation["details"]}
    raw = details.get("raw dot product score")
    scale = explanation["value"] / raw["value"] if raw and raw["value"] else 0.0
    ceilings = [detail["value"] for detail in details.get("quantization rescaling", {}).get("details", [])]
    found = []
    for detail in raw["details"] if raw else []:
        token = ANN_TOKEN.match(detail["description"])
        if token:
            q, d = int(token["q"]), int(token["d"])
            found.append(Contribution(token["token"], detail["value"] * scale, *ann_weights(q, d, scale, ceilings)))
    rest = explanation["value"] - sum(c.score for c in found)
    if found and abs(rest) > 1e-6 * max(explanation["value"], 1.0):
        found.append(Contribution("(query tokens beyond top_n)", rest))
    return found


def ann_weights(q: int, d: int, scale: float, ceilings: list[float]) -> tuple[float | None, float | None]:
    """(query weight, document weight) of a token's bytes; the document's from the ingest ceiling."""
    if len(ceilings) < 3 or not ceilings[1]:
        return None, None
    document = d * ceilings[1] / QUANTIZATION_LEVELS
    return q * scale * QUANTIZATION_LEVELS / ceilings[1], document


@dataclass(frozen=True)
class PipelineChoice:
    """The search pipeline of non-hybrid requests (None: the index's default) and what the index's default does:
    ``two_phase`` describes its two-phase processor (None: it has none)."""

    name: str | None = None
    two_phase: str | None = None

    def notes(self, mode: str) -> list[str]:
        if self.two_phase is None or mode == "bm25":
            return []
        if mode == "hybrid":
            return ["two-phase does not apply to a hybrid query: its sparse side searches every query token"]
        if self.name == BYPASS:
            return ["two-phase bypassed (--no-two-phase): every query token searched"]
        return [f"two-phase search ({self.two_phase}): the strongest query tokens found the candidates, all rescored"]


class QueryEncoder(Protocol):
    def tokens(self, text: str) -> dict[str, float]: ...


@dataclass
class SeismicQuery:
    """How to query a seismic index: its parameters, its id remapping, the vocabulary's strings (to show
    tokens) and the ``method_parameters`` to send (``filter``: a query clause)."""

    parameters: SeismicParameters
    slots: TokenSlots
    strings: list[str]
    method_parameters: dict = field(default_factory=dict)

    def name(self, field_id: str) -> str:
        """The token string of a field id in an explanation."""
        if not field_id.isdigit():
            return field_id
        token = self.slots.model_id(int(field_id))
        return self.strings[token] if token < len(self.strings) else field_id


class ClusterQueryEncoder:
    """Query tokens from a model deployed on the cluster (``_predict``; a SPARSE_TOKENIZE model for doc-only)."""

    def __init__(self, ml: MLCommons, model_id: str) -> None:
        self.ml = ml
        self.model_id = model_id

    def tokens(self, text: str) -> dict[str, float]:
        return {token: float(weight) for token, weight in self.ml.predict(self.model_id, [text])[0].items()}


class Searcher:
    """Queries one index in any of :data:`MODES`."""

    def __init__(
        self,
        client: OpenSearch,
        index: str,
        morphemes: MorphemeField,
        encoder: QueryEncoder | None,
        max_clauses: int = 1024,
        fusion: str = "rrf",
        seismic: SeismicQuery | None = None,
        pipeline: PipelineChoice | None = None,
    ) -> None:
        self.client = client
        self.index = index
        self.morphemes = morphemes
        self.encoder = encoder
        self.max_clauses = max_clauses
        self.fusion = fusion
        self.seismic = seismic
        self.pipeline = pipeline or PipelineChoice()

    def request(self, text: str, mode: str, k: int) -> tuple[dict, dict, SearchResult]:
        """The search body and URL parameters for ``text``, and the result they will fill."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        result = SearchResult(text, mode, [])
        clauses, params, reserve = [], {}, 0
        if mode in ("bm25", "hybrid"):
            bm25 = self.morphemes.query(text)
            result.query_terms = bm25["match"][MORPHEMES].split() if not self.morphemes.nori else [text]
            clauses.append(bm25)
            reserve = hybrid_reserve(self.morphemes.clauses(text)) if mode == "hybrid" else 0
        if mode in ("sparse", "hybrid"):
            if self.encoder is None:
                raise ValueError("sparse and hybrid search need a model: give --model or --model-id")
            limits = QueryTokenLimits(self.max_clauses)
            if self.seismic is None:
                result.query_tokens = dict(
                    sorted(limits.apply(self.encoder.tokens(text), reserve).items(), key=lambda item: -item[1])
                )
                sparse = {"query_tokens": result.query_tokens}
            else:
                sparse = self._seismic_clause(text, limits, reserve, result)
            result.notes.extend(limits.notes("this query"))
            if result.query_tokens:
                clauses.append({"neural_sparse": {EMBEDDING: sparse}})
            else:
                result.notes.append("the model gives this query no token: nothing can match on the sparse side")
        if mode == "hybrid":
            params["search_pipeline"] = ensure_hybrid_pipeline(self.client, self.fusion)
            query = hybrid_query(clauses, k)
        else:
            query = clauses[0] if clauses else {"match_none": {}}
            params |= {"search_pipeline": self.pipeline.name} if self.pipeline.name else {}
        result.notes.extend(self.pipeline.notes(mode))
        return {"size": k, "query": query}, params, result

    def _seismic_clause(self, text: str, limits: QueryTokenLimits, reserve: int, result: SearchResult) -> dict:
        """The ``neural_sparse`` body for a seismic index; ``result.query_tokens`` gets the tokens as strings."""
        seismic = self.seismic
        by_id = self.encoder.token_ids(text)
        names = {str(seismic.slots.field_id(token)): seismic.strings[token] for token in by_id}
        kept = limits.apply(seismic.slots.query(by_id), reserve)
        unheld = len(by_id) - len(seismic.slots.query(by_id))
        if unheld:
            result.notes.append(f"{unheld} query tokens are held by no document of this index (they add nothing)")
        result.query_tokens = {names[i]: w for i, w in sorted(kept.items(), key=lambda item: -item[1])}
        return query_clause(kept, seismic.parameters.ceilings[1], seismic.method_parameters)

    def search(self, text: str, mode: str = "sparse", k: int = 10, explain: bool = True) -> SearchResult:
        body, params, result = self.request(text, mode, k)
        body |= {"_source": [TEXT, TITLE], "explain": explain}
        start, retried = time.perf_counter(), []
        params = {**params, "allow_partial_search_results": "false"}  # a shard that did not answer: an error
        response = with_backoff(
            lambda: self.client.search(index=self.index, body=body, params=params),
            attempts=SEARCH_ATTEMPTS,
            on_retry=lambda error: retried.append(failure_reason(error)),
        )
        result.milliseconds = (time.perf_counter() - start) * 1000
        if retried:
            result.notes.append(f"answered at attempt {len(retried) + 1} (refused before with {retried[-1]})")
        for rank, hit in enumerate(response["hits"]["hits"], start=1):
            source = hit.get("_source") or {}
            result.hits.append(
                Hit(
                    rank,
                    hit["_id"],
                    hit["_score"],
                    source.get(TITLE, ""),
                    source.get(TEXT, ""),
                    self._contributions(hit["_explanation"]) if explain else [],
                )
            )
        if mode == "hybrid":
            result.notes.append(
                f"hybrid scores are the {self.fusion} fusion of the BM25 and sparse rankings; the matched tokens "
                "show each side's own term scores"
            )
        return result

    def _contributions(self, explanation: dict) -> list[Contribution]:
        found = contributions(explanation)
        if self.seismic is None:
            return found
        return [replace(c, token=self.seismic.name(c.token)) if c.source == "sparse" else c for c in found]
