"""The suite's one table, as suite.json, suite.md and suite.html.

Per system: nDCG@10 on every set and the three measures averaged over the sets that ran; published figures
(with their source) as rows of their own; then per set every system's quality beside its cost (index size,
median query latency, documents encoded per second), the paired tests between every two systems, and the
sets that failed with their error.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict
from pathlib import Path

from ko_sparse.bench.published import published_for
from ko_sparse.bench.runner import SystemResult
from ko_sparse.bench.significance import METRIC, Comparison
from ko_sparse.bench.suite import SUITE_MEASURES, SetOutcome, SuiteOutcome

Table = tuple[list[str], list[list[str]]]  # header, rows
MISSING = "–"


def number(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def summary_table(suite: SuiteOutcome) -> Table:
    """One row per system (ours, then the published ones): nDCG@10 per set, then the averages over the sets
    that ran (empty where a system did not run on all of them)."""
    header = ["system", *(f"{o.name} {METRIC}" for o in suite.sets), *(f"average {m}" for m in SUITE_MEASURES)]
    rows = []
    for system in suite.systems():
        cells = [number(o.metric(system, METRIC)) if o.error is None else "failed" for o in suite.sets]
        rows.append([system, *cells, *(number(suite.average(system, m)) for m in SUITE_MEASURES)])
    published: dict[str, dict[str, float]] = {}
    for outcome in suite.sets:
        for entry in published_for(outcome.name):
            published.setdefault(entry.model, {})[outcome.name] = entry.metrics[METRIC]
    for model, scores in published.items():
        cells = [number(scores.get(o.name)) for o in suite.sets]
        rows.append([f"{model}, published", *cells, *([MISSING] * len(SUITE_MEASURES))])
    return header, rows


def cost(result: SystemResult) -> list[str]:
    index = result.index
    return [
        number(index.size_bytes / 1e6, 2) if index else MISSING,
        number(result.latency_ms["p50"], 1),
        number(index.documents_per_second, 1) if index else MISSING,
    ]


def set_table(outcome: SetOutcome) -> Table:
    """Quality beside cost, one row per system, then the published rows with their source."""
    header = ["system", *SUITE_MEASURES, "index MB", "p50 ms", "docs/s", "source"]
    rows = [
        [r.name, *(number(r.metrics[m]) for m in SUITE_MEASURES), *cost(r), "measured here"] for r in outcome.results
    ]
    rows += [
        [
            f"{p.model}, published",
            *(number(p.metrics.get(m)) for m in SUITE_MEASURES),
            MISSING,
            MISSING,
            MISSING,
            p.source,
        ]
        for p in published_for(outcome.name)
    ]
    return header, rows


def comparison_table(comparisons: list[Comparison]) -> Table:
    header = ["first", "second", f"mean Δ {METRIC}", "t-test p", "randomisation p", "wins", "losses", "ties"]
    rows = [
        [
            c.first,
            c.second,
            f"{c.mean_difference:+.4f}",
            number(c.t_test_p),
            number(c.randomisation_p),
            str(c.wins),
            str(c.losses),
            str(c.ties),
        ]
        for c in comparisons
    ]
    return header, rows


def failed_table(suite: SuiteOutcome) -> Table:
    return ["set", "pinned", "error"], [[o.name, o.pinned.pinned, o.error or ""] for o in suite.failed]


def markdown_table(table: Table) -> str:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html_cell(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_cell(cell: str) -> str:
    escaped = html.escape(cell)
    return f'<a href="{escaped}">{escaped}</a>' if cell.startswith("https://") else escaped


TESTS_NOTE = (
    f"Paired tests on per-query {METRIC} between every two systems on the same queries, two-sided: paired t-test "
    "(SciPy) and paired randomisation (sign-flip) test; wins/losses/ties: queries where the first scores "
    "higher/lower/the same. Latency: median per query, one query at a time, measured by the client."
)


def sections(suite: SuiteOutcome) -> list[tuple[str, list[Table | str]]]:
    """(title, parts) in reading order; a part is a table or a paragraph."""
    parts: list[tuple[str, list[Table | str]]] = [
        (
            f"{suite.name}: {len(suite.completed)} of {len(suite.sets)} sets ran",
            [
                summary_table(suite),
                "Averages cover the sets that ran; published rows are MTEB's own result files for the same "
                "dataset revision (sources in each set's table).",
            ],
        )
    ]
    if suite.failed:
        parts.append(("Failed sets", [failed_table(suite), "These sets are left out of every average."]))
    for outcome in suite.completed:
        summary = outcome.dataset.summary() if outcome.dataset else ""
        parts.append(
            (
                f"{outcome.name} ({summary})",
                [outcome.pinned.pinned, set_table(outcome), comparison_table(outcome.comparisons), TESTS_NOTE],
            )
        )
    return parts


def markdown(suite: SuiteOutcome, settings: dict) -> str:
    lines = [f"# ko-sparse bench --suite {suite.name}", ""]
    for title, parts in sections(suite):
        lines += [f"## {title}", ""]
        for part in parts:
            lines += [part if isinstance(part, str) else markdown_table(part), ""]
    lines += ["## Settings", "", "```json", json.dumps(settings, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(lines)


STYLE = (
    'body{font-family:system-ui,"Noto Sans KR",sans-serif;margin:24px;color:#1d2330}table{border-collapse:collapse;'
    "font-size:13px;margin:8px 0}td,th{border:1px solid #d8dde6;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}p{font-size:13px;color:#4a5365}"
)


def render_html(suite: SuiteOutcome, settings: dict) -> str:
    body = []
    for title, parts in sections(suite):
        body.append(f"<h2>{html.escape(title)}</h2>")
        body += [f"<p>{html.escape(part)}</p>" if isinstance(part, str) else html_table(part) for part in parts]
    settings_json = html.escape(json.dumps(settings, indent=2, ensure_ascii=False))
    return (
        f'<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"><title>ko-sparse bench --suite '
        f"{html.escape(suite.name)}</title><style>{STYLE}</style></head><body><h1>ko-sparse bench --suite "
        f"{html.escape(suite.name)}</h1>{''.join(body)}<h2>Settings</h2><pre>{settings_json}</pre></body></html>"
    )


def suite_json(suite: SuiteOutcome, settings: dict) -> dict:
    return {
        "settings": settings,
        "suite": suite.name,
        "averages": {s: {m: suite.average(s, m) for m in SUITE_MEASURES} for s in suite.systems()},
        "sets": [
            {
                "name": o.name,
                "pinned": {
                    "path": o.pinned.path,
                    "revision": o.pinned.revision,
                    "split": o.pinned.split,
                    "subset": o.pinned.subset,
                    "layout": o.pinned.layout,
                },
                "error": o.error,
                "queries": len(o.dataset.queries) if o.dataset else None,
                "documents": len(o.dataset.corpus) if o.dataset else None,
                "systems": [
                    {
                        "name": r.name,
                        "metrics": {m: r.metrics[m] for m in SUITE_MEASURES},
                        "latency_ms": r.latency_ms,
                        "index_bytes": r.index.size_bytes if r.index else None,
                        "documents_per_second": r.index.documents_per_second if r.index else None,
                    }
                    for r in o.results
                ],
                "comparisons": [c.as_dict() for c in o.comparisons],
                "published": [asdict(entry) for entry in published_for(o.name)],
                "notes": o.notes,
            }
            for o in suite.sets
        ],
    }


def write_suite_report(output_dir: Path, suite: SuiteOutcome, settings: dict) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(suite_json(suite, settings), indent=2, ensure_ascii=False, default=str)
    (output_dir / "suite.json").write_text(payload, encoding="utf-8")
    (output_dir / "suite.md").write_text(markdown(suite, settings), encoding="utf-8")
    (output_dir / "suite.html").write_text(render_html(suite, settings), encoding="utf-8")
