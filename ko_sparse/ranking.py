"""Reciprocal rank fusion (Cormack et al., 2009): the one formula behind hybrid search and mined negatives.

Written here because no installed library offers it over plain rankings: ir-measures and
pytrec_eval only score runs, bm25s only ranks (``ranx.fuse`` would, but ranx is not a dependency).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

Item = TypeVar("Item", bound=Hashable)
RRF_K = 60


def reciprocal_rank_fusion(rankings: Iterable[Sequence[Item]], rrf_k: int = RRF_K) -> list[tuple[Item, float]]:
    """Every ranked item with ``sum 1 / (rrf_k + rank)`` over the rankings (best first, rank 1 first),
    highest first; ties keep the order in which items were first seen."""
    scores: dict[Item, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
