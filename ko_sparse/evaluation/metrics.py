"""Ranking metrics through ir-measures (pytrec_eval backend), measures as objects."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import ir_measures
from ir_measures import Measure

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


def recall_mrr_ndcg(k_values: Iterable[int], ndcg_k: int = 10) -> dict[str, Measure]:
    """Recall@k for each k, MRR and nDCG@k, keyed by the names ko-sparse reports."""
    measures: dict[str, Measure] = {f"recall@{k}": ir_measures.R @ k for k in k_values}
    measures["mrr"] = ir_measures.RR
    measures[f"ndcg@{ndcg_k}"] = ir_measures.nDCG @ ndcg_k
    return measures


def per_query(qrels: Qrels, run: Run, measures: Mapping[str, Measure]) -> dict[str, dict[str, float]]:
    """``{name: {query_id: value}}`` for every query in ``qrels``; a query absent from ``run`` scores 0."""
    names = {measure: name for name, measure in measures.items()}
    values: dict[str, dict[str, float]] = {name: dict.fromkeys(qrels, 0.0) for name in measures}
    for metric in ir_measures.iter_calc(list(measures.values()), qrels, run):
        if metric.query_id in qrels:
            values[names[metric.measure]][metric.query_id] = float(metric.value)
    return values


def evaluate_run(qrels: Qrels, run: Run, measures: Mapping[str, Measure]) -> dict[str, float]:
    """Mean of each measure over all queries in ``qrels`` (pytrec_eval alone would skip unranked ones)."""
    totals: dict[str, float] = defaultdict(float)
    for name, by_query in per_query(qrels, run, measures).items():
        totals[name] = sum(by_query.values()) / max(len(by_query), 1)
    return dict(totals)
