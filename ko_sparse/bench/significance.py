"""Paired comparisons of two systems over the same queries: which is better, how surely, and where.

Two tests on the per-query scores (nDCG@10 by default), both two-sided and both from SciPy:

- the paired t-test (``scipy.stats.ttest_rel``), the test TREC-style comparisons usually report;
- the paired randomisation (sign-flip) test (``scipy.stats.permutation_test`` with
  ``permutation_type="samples"``): under the null hypothesis each query's two scores are exchangeable, so the
  mean difference is compared with the mean differences of random swaps. It assumes no normality, which
  per-query nDCG (many zeros and ones) lacks; Smucker, Allan and Carterette (CIKM 2007) recommend it for IR.
  Exact when 2^queries <= ``RESAMPLES``, else ``RESAMPLES`` random swaps from a fixed seed (repeatable).

Both p-values are NaN when the two systems score every query the same.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np
from scipy import stats

METRIC = "ndcg@10"
RESAMPLES = 10_000
SEED = 0


@dataclass(frozen=True)
class Comparison:
    first: str
    second: str
    metric: str
    queries: int
    mean_difference: float  # first minus second
    t_test_p: float
    randomisation_p: float
    wins: int  # queries where first scores higher
    losses: int
    ties: int

    def as_dict(self) -> dict:
        return asdict(self)


def mean_difference(differences: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(differences, axis=axis)


def compare(
    first: str, second: str, scores: dict[str, float], other: dict[str, float], metric: str = METRIC
) -> Comparison:
    """``first`` against ``second`` on the queries both were scored on (``scores``/``other``: qid -> score)."""
    qids = sorted(scores.keys() & other.keys())
    ours = np.array([scores[q] for q in qids], dtype=float)
    theirs = np.array([other[q] for q in qids], dtype=float)
    differences = ours - theirs
    t_p = randomisation_p = math.nan
    if np.any(differences != 0):
        t_p = float(stats.ttest_rel(ours, theirs).pvalue)
        randomisation_p = float(
            stats.permutation_test(
                (differences,),
                mean_difference,
                permutation_type="samples",
                vectorized=True,
                n_resamples=RESAMPLES,
                alternative="two-sided",
                random_state=SEED,
            ).pvalue
        )
    return Comparison(
        first,
        second,
        metric,
        len(qids),
        float(differences.mean()) if len(qids) else math.nan,
        t_p,
        randomisation_p,
        int(np.sum(differences > 0)),
        int(np.sum(differences < 0)),
        int(np.sum(differences == 0)),
    )


def pairwise(per_query: dict[str, dict[str, float]], metric: str = METRIC) -> list[Comparison]:
    """Every pair of systems (in the given order: earlier first); ``per_query``: system -> qid -> score."""
    return [compare(a, b, per_query[a], per_query[b], metric) for a, b in combinations(per_query, 2)]
