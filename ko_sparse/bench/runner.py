"""Run systems on a set: index, search, score with ir-measures, test against BM25, time everything."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import ir_measures
import numpy as np
from scipy import stats as scipy_stats

from ko_sparse.bench.systems import IndexStats, Matches, Run, SearchOutput, System, fuse_runs, hybrid_name
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
KINDS = ("bm25", "sparse", "dense")  # what a fusion combines, in the order its name lists them
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


def fuse(*outputs: SearchOutput, depth: int) -> SearchOutput:
    """Hybrid: reciprocal rank fusion; its latency is the searches one after the other."""
    latencies = [sum(parts) for parts in zip(*(output.latencies_ms for output in outputs), strict=True)]
    return SearchOutput(fuse_runs([output.run for output in outputs], depth), latencies)


def kind(name: str) -> str | None:
    """Which of :data:`KINDS` a system is (None for what no fusion takes: a pruned variant, a cluster hybrid)."""
    if name == BASELINE:
        return BASELINE
    prefix = name.split("[", 1)[0]
    return prefix if prefix in ("sparse", "dense") and "|" not in name else None


def fusion_parts(names: list[str], fusion: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The systems a fusion of ``fusion``'s kinds combines: every choice of one system of each kind."""
    return list(itertools.product(*([name for name in names if kind(name) == part] for part in fusion)))


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


def run_benchmark(
    dataset: RetrievalSet,
    systems: list[System],
    hybrid: bool = False,
    depth: int = DEPTH,
    fusions: tuple[tuple[str, ...], ...] = (),
) -> list[SystemResult]:
    """Every system in turn, then the fusions by reciprocal rank: ``hybrid`` adds BM25 + each (unpruned)
    sparse system; each of ``fusions`` (kinds of :data:`KINDS`, e.g. ``("bm25", "dense")``) one hybrid per
    choice of one system of each kind.

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
    wanted = dict.fromkeys([*([(BASELINE, "sparse")] if hybrid else []), *fusions])
    for parts in [parts for fusion in wanted for parts in fusion_parts(list(outputs), fusion)]:
        name = hybrid_name(list(parts))
        outputs[name] = fuse(*(outputs[part] for part in parts), depth=depth)
        results.append(score(dataset, name, outputs[name], None))
        results[-1].matches = explain(dataset, outputs[name].run, *(by_name[part] for part in parts))
        if clean is not None:
            clean_outputs[name] = fuse(*(clean_outputs[part] for part in parts), depth=depth)
    if clean is not None:
        for result in results:
            result.clean_metrics = score(clean, result.name, clean_outputs[result.name], None).metrics
    baseline = next((r for r in results if r.name == BASELINE), None)
    if baseline is not None:
        for result in results:
            if result is not baseline:
                result.p_values = paired_t_test(result, baseline)
    return results
