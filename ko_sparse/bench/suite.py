"""Run a suite of retrieval sets: every system on every set, a failed set reported and the others run.

The systems come from a ``make_systems(set name)`` callable, so whatever ``ko-sparse bench``'s options build
(BM25, sparse models, and any other system it knows) runs here unchanged; ``run_set`` is the same
``run_benchmark`` call a single ``bench --index`` makes, so a set's row equals its own run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ko_sparse.bench.runner import SystemResult
from ko_sparse.bench.significance import Comparison, pairwise
from ko_sparse.data.retrieval_sets import RetrievalSet
from ko_sparse.data.suite import SuiteSet
from ko_sparse.errors import KoSparseError

SUITE_MEASURES = ("ndcg@10", "recall@100", "mrr@10")


@dataclass
class SetOutcome:
    """One set: its results, or the one-line error that stopped it."""

    pinned: SuiteSet
    dataset: RetrievalSet | None = None
    results: list[SystemResult] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.pinned.name

    def metric(self, system: str, measure: str) -> float | None:
        result = next((r for r in self.results if r.name == system), None)
        return None if result is None else result.metrics[measure]


@dataclass
class SuiteOutcome:
    name: str
    sets: list[SetOutcome]

    @property
    def completed(self) -> list[SetOutcome]:
        return [outcome for outcome in self.sets if outcome.error is None]

    @property
    def failed(self) -> list[SetOutcome]:
        return [outcome for outcome in self.sets if outcome.error is not None]

    def systems(self) -> list[str]:
        """Every system that ran, in the order they first ran."""
        return list(dict.fromkeys(r.name for outcome in self.completed for r in outcome.results))

    def average(self, system: str, measure: str) -> float | None:
        """The mean over the completed sets; None unless the system ran on every one of them (an average over
        different sets would not compare)."""
        values = [outcome.metric(system, measure) for outcome in self.completed]
        if not values or any(value is None for value in values):
            return None
        return float(np.mean(values))


SetRunner = Callable[[RetrievalSet], tuple[list[SystemResult], list[str]]]


def run_suite(name: str, sets: list[SuiteSet], run_set: SetRunner) -> SuiteOutcome:
    """Load and run each set in turn. A set that fails to load (a download cut mid-way, a missing config) or to
    run with a ko-sparse error is recorded with its error; the next set still runs."""
    outcomes = []
    for pinned in sets:
        outcome = SetOutcome(pinned)
        outcomes.append(outcome)
        try:
            outcome.dataset = pinned.load()
            outcome.results, outcome.notes = run_set(outcome.dataset)
        except KoSparseError as error:
            outcome.error = str(error)
            continue
        outcome.comparisons = pairwise({r.name: r.per_query["ndcg@10"] for r in outcome.results})
    return SuiteOutcome(name, outcomes)
