"""Reciprocal rank fusion: one function, the same fused ranking for hybrid search and mined negatives."""

from __future__ import annotations

import pytest

from ko_sparse.bench.systems import reciprocal_rank_fusion as fuse_runs
from ko_sparse.data.negatives import fused_ranker
from ko_sparse.ranking import reciprocal_rank_fusion

FIRST, SECOND = [3, 1, 4, 5], [1, 5, 9, 2, 6]


def test_scores_are_summed_reciprocal_ranks_highest_first():
    fused = dict(reciprocal_rank_fusion([FIRST, SECOND], rrf_k=60))
    assert list(fused) == [1, 5, 3, 4, 9, 2, 6]
    assert list(fused.values()) == pytest.approx(
        [1 / 62 + 1 / 61, 1 / 64 + 1 / 62, 1 / 61, 1 / 63, 1 / 63, 1 / 64, 1 / 65]
    )
    assert reciprocal_rank_fusion([["a"], ["b"]], rrf_k=1) == [("a", 0.5), ("b", 0.5)]  # ties: first seen first


def test_mined_negatives_and_hybrid_runs_fuse_as_the_one_function():
    expected = dict(reciprocal_rank_fusion([FIRST, SECOND], rrf_k=10)[:5])
    ranker = fused_ranker([lambda anchors: [FIRST], lambda anchors: [SECOND]], depth=5, rrf_k=10)
    assert ranker(["anchor"]) == [list(expected)]

    def run(ranking: list[int]) -> dict[str, dict[str, float]]:
        return {"q": {str(item): 100.0 - rank for rank, item in enumerate(ranking)}}

    fused = fuse_runs(run(FIRST), run(SECOND), k=5, rrf_k=10)
    assert list(fused["q"]) == [str(item) for item in expected]
    assert list(fused["q"].values()) == pytest.approx(list(expected.values()))
