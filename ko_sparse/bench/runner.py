"""Run systems on a set: index, search, score with ir-measures, test against BM25, time everything."""

from __future__ import annotations

from dataclasses import dataclass, field

import ir_measures
import numpy as np
from scipy import stats as scipy_stats

from ko_sparse.bench.systems import IndexStats, Matches, Run, SearchOutput, System, reciprocal_rank_fusion
from ko_sparse.data.retrieval_sets import RetrievalSet
from ko_sparse.evaluation.metrics import per_query

MEASURES = {
    "recall@5": ir_measures.R @ 5,
    "recall@10": ir_measures.R @ 10,
    "recall@20": ir_measures.R @ 20,
    "recall@100": ir_measures.R @ 100,
    "mrr@10": ir_measures.RR @ 10,
    "ndcg@10": ir_measures.nDCG @ 10,
}
BASELINE = "bm25"
DEPTH = 100
EXPLAINED = 10  # top hits per query whose matched tokens the HTML report shows


@dataclass
class SystemResult:
    name: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    latency_ms: dict[str, float]
    index: IndexStats | None
    run: Run
    p_values: dict[str, float] = field(default_factory=dict)
    clean_metrics: dict[str, float] = field(default_factory=dict)
    matches: dict[str, Matches] = field(default_factory=dict)  # qid -> the top hits' matched tokens

    def drop(self) -> dict[str, float]:
        """Clean-query metric minus perturbed-query metric (positive: the perturbation hurts)."""
        return {m: self.clean_metrics[m] - self.metrics[m] for m in self.clean_metrics}


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    values = np.asarray(latencies_ms)
    return {f"p{p}": float(np.percentile(values, p)) for p in (50, 95, 99)} | {"mean": float(values.mean())}


def score(dataset: RetrievalSet, name: str, output: SearchOutput, index: IndexStats | None) -> SystemResult:
    qrels = {qid: dataset.qrels[qid] for qid in dataset.queries}
    by_query = per_query(qrels, output.run, MEASURES)
    metrics = {metric: float(np.mean(list(values.values()))) for metric, values in by_query.items()}
    return SystemResult(name, metrics, by_query, latency_summary(output.latencies_ms), index, output.run)


def paired_t_test(system: SystemResult, baseline: SystemResult) -> dict[str, float]:
    """Two-sided paired t-test per metric over the queries (NaN when the two are identical)."""
    p_values = {}
    for metric, values in system.per_query.items():
        ours = np.array([values[q] for q in sorted(values)])
        theirs = np.array([baseline.per_query[metric][q] for q in sorted(values)])
        p_values[metric] = float(scipy_stats.ttest_rel(ours, theirs).pvalue) if np.any(ours != theirs) else float("nan")
    return p_values


def fuse(first: SearchOutput, second: SearchOutput, depth: int) -> SearchOutput:
    """Hybrid: reciprocal rank fusion; its latency is the two searches one after the other."""
    latencies = [a + b for a, b in zip(first.latencies_ms, second.latencies_ms, strict=True)]
    return SearchOutput(reciprocal_rank_fusion(first.run, second.run, depth), latencies)


def top(run: Run, qid: str, n: int = EXPLAINED) -> list[str]:
    return [doc_id for doc_id, _ in sorted(run.get(qid, {}).items(), key=lambda item: -item[1])[:n]]


def explain(dataset: RetrievalSet, run: Run, *systems: System) -> dict[str, Matches]:
    """The matched tokens of each query's top hits; a fused run asks each of its systems (tokens of either)."""
    matches: dict[str, Matches] = {}
    for qid, text in dataset.queries.items():
        doc_ids = top(run, qid)
        merged: Matches = {doc_id: {} for doc_id in doc_ids}
        for system in systems:
            for doc_id, tokens in system.explain(text, doc_ids).items():
                merged[doc_id].update(tokens)
        matches[qid] = merged
    return matches


def run_benchmark(dataset: RetrievalSet, systems: list[System], hybrid: bool, depth: int = DEPTH) -> list[SystemResult]:
    """Every system in turn; ``hybrid`` adds BM25 + each sparse system fused by reciprocal rank.

    On a perturbed set every system also answers the clean queries, for the drop.
    """
    clean = dataset.with_clean_queries() if dataset.clean_queries else None
    results, outputs, clean_outputs, by_name = [], {}, {}, {system.name: system for system in systems}
    for system in systems:
        index = system.index(dataset.corpus)
        outputs[system.name] = system.search(dataset.queries, depth)
        results.append(score(dataset, system.name, outputs[system.name], index))
        results[-1].matches = explain(dataset, outputs[system.name].run, system)
        if clean is not None:
            clean_outputs[system.name] = system.search(clean.queries, depth)
    if hybrid and BASELINE in outputs:
        for name in [n for n in outputs if n.startswith("sparse") and "|" not in n]:  # unpruned models
            hybrid_name = name.replace("sparse", "hybrid", 1)
            outputs[hybrid_name] = fuse(outputs[BASELINE], outputs[name], depth)
            results.append(score(dataset, hybrid_name, outputs[hybrid_name], None))
            results[-1].matches = explain(dataset, outputs[hybrid_name].run, by_name[BASELINE], by_name[name])
            if clean is not None:
                clean_outputs[hybrid_name] = fuse(clean_outputs[BASELINE], clean_outputs[name], depth)
    if clean is not None:
        for result in results:
            result.clean_metrics = score(clean, result.name, clean_outputs[result.name], None).metrics
    baseline = next((r for r in results if r.name == BASELINE), None)
    if baseline is not None:
        for result in results:
            if result is not baseline:
                result.p_values = paired_t_test(result, baseline)
    return results
