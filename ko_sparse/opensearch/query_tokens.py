"""What a cluster accepts as ``neural_sparse`` ``query_tokens``, and a count of what had to change.

Each token becomes one boolean clause (Lucene's ``indices.query.bool.max_clause_count``, 1,024 by
default) and a ``FeatureField`` linear query, which rejects weights above 64: longer queries keep
their strongest tokens, larger weights are clipped to 64. Both are counted so a report can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from opensearchpy import OpenSearch

from ko_sparse.opensearch.rank_features import MAX_LINEAR_QUERY_WEIGHT


def max_clause_count(client: OpenSearch) -> int:
    """``indices.query.bool.max_clause_count`` (Lucene's limit on boolean clauses, 1,024 by default)."""
    settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    for scope in ("transient", "persistent", "defaults"):
        value = settings[scope].get("indices.query.bool.max_clause_count")
        if value is not None:
            return int(value)
    return 1024


@dataclass
class QueryTokenLimits:
    max_clauses: int = 1024
    truncated_queries: int = 0
    clipped_queries: int = 0
    clipped_tokens: int = 0

    def apply(self, tokens: dict[str, float], reserve: int = 0) -> dict[str, float]:
        """``tokens`` within the limits (the strongest ``max_clauses - reserve``, weights at most 64).

        ``reserve``: clauses the rest of the request uses. Lucene counts the clauses of the whole query
        tree, so BM25 terms beside the tokens take from the same 1,024 (measured on OpenSearch 3.6: a
        ``hybrid`` query's sparse side may have ``max_clauses + 1 - terms`` tokens, inside a ``bool`` with
        an ``ids`` filter ``max_clauses - 1 - terms``; see :func:`hybrid_reserve`)."""
        budget = max(1, self.max_clauses - reserve)
        if len(tokens) > budget:
            self.truncated_queries += 1
            tokens = dict(sorted(tokens.items(), key=lambda item: -item[1])[:budget])
        clipped = sum(weight > MAX_LINEAR_QUERY_WEIGHT for weight in tokens.values())
        if clipped:
            self.clipped_queries += 1
            self.clipped_tokens += clipped
        return {token: min(weight, MAX_LINEAR_QUERY_WEIGHT) for token, weight in tokens.items()}

    def notes(self, name: str) -> list[str]:
        """Sentences for a report about the queries that changed (none when nothing did)."""
        notes = []
        if self.truncated_queries:
            notes.append(
                f"{name}: {self.truncated_queries} queries had more tokens than the cluster's {self.max_clauses} "
                f"boolean clauses (less the BM25 terms in a hybrid query) and were cut to their strongest "
                "(the embedded engine scores all)"
            )
        if self.clipped_tokens:
            notes.append(
                f"{name}: {self.clipped_tokens} query token weights in {self.clipped_queries} queries were above "
                f"{MAX_LINEAR_QUERY_WEIGHT:g}, the most a rank_features linear query accepts, and were clipped to it "
                "(the embedded engine uses them unclipped)"
            )
        return notes


def hybrid_reserve(bm25_terms: int) -> int:
    """Clauses to leave for the BM25 side of a hybrid (or bool) query with ``bm25_terms`` terms."""
    return bm25_terms + 2
