"""Paired comparisons of two systems over the same queries: which is better, how surely, and where.

Two tests on the per-query scores (nDCG@10 by default), both two-sided:

- the paired t-test (``scipy.stats.ttest_rel``), the test TREC-style comparisons usually report;
- the paired randomisation (sign-flip) test: under the null hypothesis each query's two scores are
  exchangeable, so the mean difference is compared with the mean differences of random swaps. It assumes no
  normality, which per-query nDCG (many zeros and ones) lacks; Smucker, Allan and Carterette (CIKM 2007)
  recommend it for IR. Exact when 2^queries <= ``RESAMPLES``, else ``RESAMPLES`` random swaps from a fixed
  seed (repeatable), with the p-value counted as ``scipy.stats.permutation_test`` counts it (exact: the share
  of assignments at least as extreme; random: (hits + 1) / (resamples + 1)). Written here with NumPy because
  ``permutation_test(permutation_type="samples")`` is 8.6x slower (8.1x-9.5x) with the same resamples on 1,000
  queries (``python -m benchmarks significance --quick``, docs/speed.md), and a report compares every pair;
  the tests check it against SciPy's.

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
BATCH = 500  # sign flips drawn at once: memory stays BATCH x queries floats on large sets
SEED = 0
TOLERANCE = 1e-12  # a resampled mean this close to the observed one counts as at least as extreme


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


def randomisation_p(differences: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """Two-sided paired randomisation test of per-query ``differences`` (see the module docstring)."""
    n = len(differences)
    observed = abs(differences.mean()) - TOLERANCE
    if 2**n <= resamples:
        signs = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs(signs @ differences) / n >= observed))
    rng, hits = np.random.default_rng(seed), 0
    for start in range(0, resamples, BATCH):
        signs = rng.choice((-1.0, 1.0), size=(min(BATCH, resamples - start), n))
        hits += int(np.sum(np.abs(signs @ differences) / n >= observed))
    return (hits + 1) / (resamples + 1)


def compare(
    first: str, second: str, scores: dict[str, float], other: dict[str, float], metric: str = METRIC
) -> Comparison:
    """``first`` against ``second`` on the queries both were scored on (``scores``/``other``: qid -> score)."""
    qids = sorted(scores.keys() & other.keys())
    ours = np.array([scores[q] for q in qids], dtype=float)
    theirs = np.array([other[q] for q in qids], dtype=float)
    differences = ours - theirs
    t_p = random_p = math.nan
    if np.any(differences != 0):
        t_p, random_p = float(stats.ttest_rel(ours, theirs).pvalue), randomisation_p(differences)
    return Comparison(
        first,
        second,
        metric,
        len(qids),
        float(differences.mean()) if len(qids) else math.nan,
        t_p,
        random_p,
        int(np.sum(differences > 0)),
        int(np.sum(differences < 0)),
        int(np.sum(differences == 0)),
    )


def pairwise(per_query: dict[str, dict[str, float]], metric: str = METRIC) -> list[Comparison]:
    """Every pair of systems (in the given order: earlier first); ``per_query``: system -> qid -> score."""
    return [compare(a, b, per_query[a], per_query[b], metric) for a, b in combinations(per_query, 2)]
