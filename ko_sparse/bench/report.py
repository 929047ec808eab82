"""Benchmark reports: a terminal table, results.json, report.md, PNG charts and report.html."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from ko_sparse.bench.html_report import METRIC, write_html
from ko_sparse.bench.runner import BASELINE, MEASURES, SystemResult
from ko_sparse.bench.significance import Comparison, pairwise
from ko_sparse.bench.suite_report import comparison_table, markdown_table
from ko_sparse.data.retrieval_sets import RetrievalSet

SIGNIFICANCE = 0.05


def _cell(result: SystemResult, metric: str) -> str:
    p = result.p_values.get(metric, math.nan)
    return f"{result.metrics[metric]:.4f}{'*' if p < SIGNIFICANCE else ''}"


def table(results: list[SystemResult]) -> str:
    """Metrics (``*``: paired t-test against BM25, p < 0.05) and query latency."""
    header = ["system", *MEASURES, "p50 ms", "p95 ms", "p99 ms"]
    rows = [
        [r.name, *(_cell(r, m) for m in MEASURES), *(f"{r.latency_ms[p]:.1f}" for p in ("p50", "p95", "p99"))]
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def drop_table(results: list[SystemResult]) -> str:
    """Perturbed sets: each metric on the clean and on the perturbed wording of the same queries, and the
    change (perturbed minus clean: a drop is negative)."""
    if not any(r.clean_metrics for r in results):
        return ""
    lines = [
        "system | " + " | ".join(f"{m} clean -> perturbed (change)" for m in ("ndcg@10", "recall@100")),
        "---|---|---",
    ]
    for r in results:
        cells = [
            f"{r.clean_metrics[m]:.4f} -> {r.metrics[m]:.4f} ({-r.drop()[m]:+.4f})" for m in ("ndcg@10", "recall@100")
        ]
        lines.append(f"{r.name} | " + " | ".join(cells))
    return "\n".join(lines)


def index_table(results: list[SystemResult]) -> str:
    """Seconds include the document encoding, also where a pruned variant reuses its model's vectors."""
    lines = ["system | documents | seconds | docs/s | index MB | details", "---|---|---|---|---|---"]
    for r in results:
        if r.index is not None:
            lines.append(
                f"{r.name} | {r.index.documents:,} | {r.index.seconds:.1f} | {r.index.documents_per_second:,.1f} | "
                f"{r.index.size_bytes / 1e6:.2f} | {json.dumps(r.index.details, ensure_ascii=False)}"
            )
    return "\n".join(lines)


def results_json(dataset: RetrievalSet, results: list[SystemResult], settings: dict) -> dict:
    return {
        "settings": settings,
        "dataset": {
            "name": dataset.name,
            "description": dataset.description,
            "licence": dataset.licence,
            "queries": len(dataset.queries),
            "documents": len(dataset.corpus),
            "notes": dataset.notes,
        },
        "systems": [
            {
                "name": r.name,
                "metrics": r.metrics,
                "p_values_vs_bm25": r.p_values,
                "latency_ms": r.latency_ms,
                "clean_query_metrics": r.clean_metrics or None,
                "drop_vs_clean_queries": r.drop() or None,
                "index": None
                if r.index is None
                else {**asdict(r.index), "documents_per_second": r.index.documents_per_second},
                "per_query": r.per_query,
            }
            for r in results
        ],
        "comparisons": [c.as_dict() for c in comparisons(results)],
    }


def comparisons(results: list[SystemResult]) -> list[Comparison]:
    """Every two systems: paired tests and wins/losses on per-query nDCG@10 (:mod:`ko_sparse.bench.significance`)."""
    return pairwise({r.name: r.per_query[METRIC] for r in results})


def markdown(dataset: RetrievalSet, results: list[SystemResult], settings: dict) -> str:
    notes = "\n".join(f"- {note}" for note in [*dataset.notes, *settings.get("notes", [])])
    return f"""# ko-sparse bench: {dataset.name}

{dataset.description}. {dataset.summary()}. Licence: {dataset.licence}.

{notes}

## Retrieval quality and latency

`*`: different from BM25 in a two-sided paired t-test over the queries, p < {SIGNIFICANCE}.
Latency is per query, measured by the client, one query at a time.

{table(results)}

{drop_table(results)}

## Every two systems

Per-query {METRIC}, two-sided paired t-test and paired randomisation (sign-flip) test; wins, losses and ties:
queries where the first system scores higher, lower, the same.

{markdown_table(comparison_table(comparisons(results)))}

## Indexing

{index_table(results)}

## Settings

```json
{json.dumps(settings, indent=2, ensure_ascii=False)}
```

![metrics](metrics.png)

Per query, side by side, with the matched tokens: `report.html`.
"""


def chart(results: list[SystemResult], title: str):
    """Grouped bars, one group per metric; the legend sits below the axes, clear of every bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = list(MEASURES)
    figure, axis = plt.subplots(figsize=(11, 4.5 + 0.25 * len(results)))
    width = 0.8 / max(len(results), 1)
    for i, result in enumerate(results):
        positions = np.arange(len(metrics)) + i * width
        axis.bar(positions, [result.metrics[m] for m in metrics], width, label=result.name)
    axis.set_xticks(np.arange(len(metrics)) + width * (len(results) - 1) / 2, metrics)
    axis.set_ylim(0, 1)
    axis.set_title(title)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=min(len(results), 3), fontsize=8, frameon=False)
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def per_query_chart(results: list[SystemResult], path: Path) -> bool:
    """Each system's per-query nDCG@10 minus BM25's, sorted: where it wins and where it loses."""
    baseline = next((r for r in results if r.name == BASELINE), None)
    compared = [r for r in results if r is not baseline]
    if baseline is None or not compared:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(compared), 1, figsize=(11, 2.2 * len(compared)), squeeze=False)
    for axis, result in zip(axes[:, 0], compared, strict=True):
        deltas = sorted(
            (result.per_query[METRIC][q] - baseline.per_query[METRIC][q] for q in result.per_query[METRIC]),
            reverse=True,
        )
        axis.bar(range(len(deltas)), deltas, width=1.0, color=["#2e7d32" if d > 0 else "#b3261e" for d in deltas])
        wins, losses = sum(d > 0 for d in deltas), sum(d < 0 for d in deltas)
        axis.set_title(f"{result.name} − bm25, {METRIC} per query: {wins} wins, {losses} losses", fontsize=9)
        axis.axhline(0, color="#6b7385", linewidth=0.8)
        axis.set_xticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_report(output_dir: Path, dataset: RetrievalSet, results: list[SystemResult], settings: dict) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = results_json(dataset, results, settings)
    (output_dir / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    (output_dir / "report.md").write_text(markdown(dataset, results, settings), encoding="utf-8")
    import matplotlib.pyplot as plt

    figure = chart(results, f"{dataset.name}: {dataset.summary()}")
    figure.savefig(output_dir / "metrics.png", dpi=120)
    plt.close(figure)
    charts = [output_dir / "metrics.png"]
    if per_query_chart(results, output_dir / "per_query.png"):
        charts.append(output_dir / "per_query.png")
    write_html(output_dir / "report.html", dataset, results, settings, charts)
