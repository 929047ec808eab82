"""Hard negatives: rank a pool with BM25 (and a sparse model), bucket by rank, balance the buckets.

A candidate's difficulty is its rank for the anchor: ``hard`` in the top 10, ``medium`` at 11-50,
``easy`` below 50 (or drawn from the whole pool when the ranking runs out). Each slot takes the
bucket furthest behind the requested proportions among those the anchor can fill; the anchor's
group (its known positives) is never a candidate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ko_sparse.ranking import RRF_K, reciprocal_rank_fusion

DIFFICULTIES = ("hard", "medium", "easy")
BUCKETS = {"hard": (0, 10), "medium": (10, 50), "easy": (50, None)}
DEPTH = 200

Tokenize = Callable[[list[str]], list[list[str]]]
Ranker = Callable[[list[str]], list[list[int]]]


def bm25_ranker(pool: Sequence[str], tokenize: Tokenize, depth: int = DEPTH) -> Ranker:
    """Pool indices ranked by BM25 for each anchor (the best ``depth``, score > 0)."""
    import bm25s

    index = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    index.index(tokenize(list(pool)), show_progress=False)
    k = min(depth, len(pool))

    def rank(anchors: list[str]) -> list[list[int]]:
        ids, scores = index.retrieve(tokenize(anchors), k=k, show_progress=False, n_threads=0)
        return [
            [int(i) for i, s in zip(row_ids, row_scores, strict=True) if s > 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    return rank


def fused_ranker(rankers: list[Ranker], depth: int = DEPTH, rrf_k: int = RRF_K) -> Ranker:
    """Reciprocal rank fusion of several rankers (BM25 with the current sparse model, say)."""

    def rank(anchors: list[str]) -> list[list[int]]:
        rankings = [ranker(anchors) for ranker in rankers]
        return [
            [index for index, _ in reciprocal_rank_fusion(per_anchor, rrf_k)[:depth]]
            for per_anchor in zip(*rankings, strict=True)
        ]

    return rank


class DifficultyBalancer:
    """Chooses each slot's difficulty: of the buckets the anchor can fill, the one furthest behind
    its requested share so far, so the whole data set meets the proportions even when some anchors
    have no hard or medium candidate."""

    def __init__(self, proportions: dict[str, float]) -> None:
        total = sum(proportions.values())
        self.shares = {name: proportions.get(name, 0.0) / total for name in DIFFICULTIES}
        self.produced = dict.fromkeys(DIFFICULTIES, 0)

    def choose(self, available: Sequence[str]) -> str:
        done = sum(self.produced.values()) + 1
        return max(available, key=lambda d: (self.shares[d] * done - self.produced[d], -DIFFICULTIES.index(d)))

    def record(self, difficulty: str) -> None:
        self.produced[difficulty] += 1


@dataclass
class NegativeSampler:
    """Candidate negatives per difficulty bucket from an anchor's ranking of the pool."""

    pool: Sequence[str]
    rng: random.Random

    def buckets(self, ranking: list[int], excluded: set[str], used: set[int]) -> dict[str, list[int]]:
        """Non-empty buckets; ``easy`` falls back to a random pool entry outside the top 50."""
        found = {}
        for name, (start, stop) in BUCKETS.items():
            candidates = [i for i in ranking[start:stop] if i not in used and self.pool[i] not in excluded]
            if name == "easy" and not candidates:
                candidates = self._random_outside(ranking, excluded, used)
            if candidates:
                found[name] = candidates
        return found

    def _random_outside(self, ranking: list[int], excluded: set[str], used: set[int]) -> list[int]:
        ranked = set(ranking[: BUCKETS["easy"][0]])
        for _ in range(20):
            index = self.rng.randrange(len(self.pool))
            if index not in ranked and index not in used and self.pool[index] not in excluded:
                return [index]
        return []


def difficulty_shares(labels: list[str]) -> dict[str, float]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(v): float(c) / len(labels) for v, c in zip(values, counts, strict=True)}
