"""The report's paired randomisation test against SciPy's ``permutation_test`` on the same differences.

Per-query score differences of two systems (seeded, nDCG-like: many ties at 0, values in [-1, 1]); both
draw the same number of sign flips (``RESAMPLES``, two-sided, ``permutation_type="samples"``) and are timed
the same way (one warm-up run each, then interleaved repeats). Both p-values are recorded: they agree to
the resampling error.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from benchmarks.common import arguments, paired_timed, per_second, report
from ko_sparse.bench.significance import RESAMPLES, randomisation_p


def differences(queries: int, seed: int = 0) -> np.ndarray:
    """Per-query differences: a third tied, the rest uniform in [-1, 1] with a small shift."""
    rng = np.random.default_rng(seed)
    values = np.clip(rng.uniform(-1.0, 1.0, queries) + 0.05, -1.0, 1.0)
    values[rng.random(queries) < 1 / 3] = 0.0
    return values


def scipy_p(values: np.ndarray) -> float:
    result = stats.permutation_test(
        (values,),
        np.mean,
        permutation_type="samples",
        n_resamples=RESAMPLES,
        alternative="two-sided",
        random_state=0,
    )
    return float(result.pvalue)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "1,000 queries (full: 5,000)")
    queries = 1000 if args.quick else 5000
    values = differences(queries)
    ours_s, theirs_s = paired_timed(lambda: randomisation_p(values), lambda: scipy_p(values), args.repeat)
    report(
        "significance_randomisation",
        per_second(1, ours_s),
        "tests/s",
        "scipy.stats.permutation_test (same resamples)",
        per_second(1, theirs_s),
        queries=queries,
        resamples=RESAMPLES,
        p_value=randomisation_p(values),
        scipy_p_value=scipy_p(values),
    )


if __name__ == "__main__":
    main()
