"""``report.html``: the benchmark as a person reads it, in one self-contained file.

The metrics and indexing tables, the charts (PNG data URIs), and per query the top hits of BM25 and of
every model side by side: relevant documents marked, the tokens each hit matched highlighted in its
text and listed with their share of the score. A selector orders the queries by where a model wins or
loses against BM25 (nDCG@10). No external resource is loaded.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from ko_sparse.bench.runner import BASELINE, EXPLAINED, MEASURES, SystemResult, top
from ko_sparse.bench.significance import pairwise
from ko_sparse.bench.suite_report import comparison_table, html_table
from ko_sparse.data.retrieval_sets import RetrievalSet

METRIC = "ndcg@10"
SNIPPET = 320
SIGNIFICANCE = 0.05

STYLE = """
body{font-family:system-ui,-apple-system,"Noto Sans KR","Malgun Gothic",sans-serif;margin:24px;color:#1d2330;
background:#fafbfc}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}table{border-collapse:collapse;font-size:13px;background:#fff}
td,th{border:1px solid #d8dde6;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #d8dde6;background:#fff}.notes{font-size:13px;color:#4a5365}
.controls{position:sticky;top:0;background:#fafbfc;padding:8px 0;z-index:2;border-bottom:1px solid #d8dde6}
section.query{background:#fff;border:1px solid #d8dde6;border-radius:6px;margin:14px 0;padding:10px 12px}
section.query h3{font-size:15px;margin:0 0 6px 0}.qid{color:#6b7385;font-weight:normal;font-size:12px}
.deltas span{display:inline-block;margin-right:10px;font-size:12px}.win{color:#137333}.loss{color:#b3261e}
.tie{color:#6b7385}.columns{display:grid;grid-auto-flow:column;grid-auto-columns:minmax(300px,1fr);gap:10px;
overflow-x:auto}.column h4{font-size:13px;margin:4px 0}ol{margin:0;padding-left:22px}
li{font-size:12.5px;margin-bottom:8px;line-height:1.45}li.relevant{background:#e8f5e9;border-left:3px solid #2e7d32;
padding-left:4px}.doc{color:#6b7385;font-size:11px}.badge{background:#2e7d32;color:#fff;border-radius:3px;
padding:0 4px;font-size:11px;margin-left:4px}mark{background:#ffe08a;padding:0 1px}.tokens{color:#4a5365;
font-size:11px}.tokens b{font-weight:600;color:#1d2330}.missing{font-size:12px;color:#6b7385}
"""

SCRIPT = """
const container = document.getElementById('queries');
function order() {
  const [key, direction] = document.getElementById('sort').value.split(':');
  const hideTies = document.getElementById('hide-ties').checked;
  const sections = Array.from(container.querySelectorAll('section.query'));
  sections.sort((a, b) => {
    if (key === 'qid') return a.dataset.order - b.dataset.order;
    const da = parseFloat(a.dataset[key]), db = parseFloat(b.dataset[key]);
    return direction === 'wins' ? db - da : da - db;
  });
  for (const section of sections) {
    const delta = key === 'qid' ? NaN : parseFloat(section.dataset[key]);
    section.hidden = hideTies && key !== 'qid' && delta === 0;
    container.appendChild(section);
  }
}
document.getElementById('sort').addEventListener('change', order);
document.getElementById('hide-ties').addEventListener('change', order);
order();
"""


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def display_tokens(tokens: dict[str, float]) -> list[str]:
    """The forms to highlight: WordPiece continuations lose their ``##``; one-letter continuations are skipped
    (they would light up half the text)."""
    forms = []
    for token in tokens:
        form = token.removeprefix("##")
        if form.strip() and not (token.startswith("##") and len(form) < 2):
            forms.append(form)
    return sorted(set(forms), key=len, reverse=True)


def highlight(text: str, tokens: dict[str, float], width: int = SNIPPET) -> str:
    """An escaped snippet of ``text`` around its first matched token, matched tokens in ``<mark>``."""
    forms = display_tokens(tokens)
    pattern = re.compile("|".join(re.escape(form) for form in forms), re.IGNORECASE) if forms else None
    first = pattern.search(text) if pattern else None
    start = max(0, first.start() - width // 5) if first else 0
    window = text[start : start + width]
    pieces, position = [], 0
    for match in pattern.finditer(window) if pattern else []:
        pieces += [html.escape(window[position : match.start()]), f"<mark>{html.escape(match.group())}</mark>"]
        position = match.end()
    pieces.append(html.escape(window[position:]))
    return ("…" if start else "") + "".join(pieces) + ("…" if start + width < len(text) else "")


def token_list(tokens: dict[str, float], limit: int = 8) -> str:
    ordered = sorted(tokens.items(), key=lambda item: -item[1])
    shown = ", ".join(f"<b>{html.escape(token)}</b> {score:.3f}" for token, score in ordered[:limit])
    more = f" … +{len(ordered) - limit}" if len(ordered) > limit else ""
    return f'<div class="tokens">matched: {shown}{more}</div>' if ordered else ""


def metrics_table(results: list[SystemResult]) -> str:
    """Quality, then cost beside it: query latency, index size and documents encoded per second."""
    header = "".join(f"<th>{html.escape(m)}</th>" for m in MEASURES)
    rows = []
    for r in results:
        cells = "".join(
            f"<td>{r.metrics[m]:.4f}{'*' if r.p_values.get(m, 1.0) < SIGNIFICANCE else ''}</td>" for m in MEASURES
        )
        latency = "".join(f"<td>{r.latency_ms[p]:.1f}</td>" for p in ("p50", "p95", "p99"))
        index = (
            f"<td>{r.index.size_bytes / 1e6:.2f}</td><td>{r.index.documents_per_second:,.1f}</td>"
            if r.index is not None
            else "<td>–</td><td>–</td>"
        )
        rows.append(f"<tr><td>{html.escape(r.name)}</td>{cells}{latency}{index}</tr>")
    return (
        f"<table><tr><th>system</th>{header}<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>index MB</th>"
        "<th>docs/s</th></tr>" + "".join(rows) + "</table>"
    )


def comparisons_table(results: list[SystemResult]) -> str:
    """Every pair of systems: :mod:`ko_sparse.bench.significance`'s paired tests and per-query wins/losses."""
    return html_table(comparison_table(pairwise({r.name: r.per_query[METRIC] for r in results})))


def index_table(results: list[SystemResult]) -> str:
    rows = [
        f"<tr><td>{html.escape(r.name)}</td><td>{r.index.documents:,}</td><td>{r.index.seconds:.1f}</td>"
        f"<td>{r.index.documents_per_second:,.1f}</td><td>{r.index.size_bytes / 1e6:.2f}</td>"
        f"<td>{html.escape(json.dumps(r.index.details, ensure_ascii=False))}</td></tr>"
        for r in results
        if r.index is not None
    ]
    return (
        "<table><tr><th>system</th><th>documents</th><th>seconds</th><th>docs/s</th><th>index MB</th>"
        "<th>details</th></tr>" + "".join(rows) + "</table>"
    )


def hit_list(dataset: RetrievalSet, result: SystemResult, qid: str) -> str:
    judged = dataset.qrels.get(qid, {})
    items = []
    for doc_id in top(result.run, qid, EXPLAINED):
        tokens = result.matches.get(qid, {}).get(doc_id, {})
        grade = judged.get(doc_id, 0)
        badge = f'<span class="badge">relevant {grade}</span>' if grade > 0 else ""
        items.append(
            f'<li class="{"relevant" if grade > 0 else ""}"><span class="doc">{html.escape(doc_id)} · '
            f"{result.run[qid][doc_id]:.4f}</span>{badge}<br>{highlight(dataset.corpus.get(doc_id, ''), tokens)}"
            f"{token_list(tokens)}</li>"
        )
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    missed = len(relevant - set(top(result.run, qid, EXPLAINED)))
    footer = f'<div class="missing">{missed} relevant document(s) not in the top {EXPLAINED}</div>' if missed else ""
    return f"<ol>{''.join(items)}</ol>{footer}"


def delta_class(delta: float) -> str:
    return "win" if delta > 0 else "loss" if delta < 0 else "tie"


def query_sections(dataset: RetrievalSet, results: list[SystemResult]) -> tuple[str, str]:
    """The sort options and one section per query."""
    baseline = next((r for r in results if r.name == BASELINE), None)
    compared = [r for r in results if r is not baseline] if baseline else []
    options = [
        f'<option value="d{i}:{direction}">{html.escape(r.name)} − bm25 ({METRIC}): {direction} first</option>'
        for i, r in enumerate(compared)
        for direction in ("wins", "losses")
    ] + ['<option value="qid:">query order</option>']
    sections = []
    for order, (qid, text) in enumerate(dataset.queries.items()):
        deltas = {
            f"d{i}": r.per_query[METRIC].get(qid, 0.0) - baseline.per_query[METRIC].get(qid, 0.0)
            for i, r in enumerate(compared)
        }
        attributes = "".join(f' data-{key}="{value:.6f}"' for key, value in deltas.items())
        badges = "".join(
            f'<span class="{delta_class(deltas[f"d{i}"])}">{html.escape(r.name)} {r.per_query[METRIC].get(qid, 0):.3f}'
            f" ({deltas[f'd{i}']:+.3f})</span>"
            for i, r in enumerate(compared)
        )
        if baseline:
            badges = f"<span>bm25 {baseline.per_query[METRIC].get(qid, 0):.3f}</span>" + badges
        columns = "".join(
            f'<div class="column"><h4>{html.escape(r.name)}</h4>{hit_list(dataset, r, qid)}</div>' for r in results
        )
        sections.append(
            f'<section class="query" data-order="{order}" data-qid="{html.escape(qid)}"{attributes}>'
            f'<h3>{html.escape(text)} <span class="qid">{html.escape(qid)}</span></h3>'
            f'<div class="deltas">{METRIC}: {badges}</div><div class="columns">{columns}</div></section>'
        )
    return "".join(options), "".join(sections)


def render(dataset: RetrievalSet, results: list[SystemResult], settings: dict, charts: list[Path]) -> str:
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in [*dataset.notes, *settings.get("notes", [])])
    images = "".join(f'<p><img alt="{html.escape(p.stem)}" src="{data_uri(p)}"></p>' for p in charts if p.is_file())
    options, sections = query_sections(dataset, results)
    return f"""<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ko-sparse bench: {html.escape(dataset.name)}</title><style>{STYLE}</style></head>
<body>
<h1>ko-sparse bench: {html.escape(dataset.name)}</h1>
<p>{html.escape(dataset.description)}. {html.escape(dataset.summary())}. Licence: {html.escape(dataset.licence)}.</p>
<ul class="notes">{notes}</ul>
<h2>Retrieval quality and latency</h2>
<p class="notes">*: different from BM25 in a two-sided paired t-test over the queries, p &lt; {SIGNIFICANCE}.
Latency is per query, measured by the client, one query at a time.</p>
{metrics_table(results)}
<h2>Every two systems</h2>
<p class="notes">Per-query {METRIC}, two-sided paired t-test and paired randomisation (sign-flip) test; wins, losses
and ties: queries where the first system scores higher, lower, the same.</p>
{comparisons_table(results)}
{images}
<h2>Indexing</h2>
{index_table(results)}
<h2>Queries</h2>
<div class="controls">order: <select id="sort">{options}</select>
<label><input type="checkbox" id="hide-ties"> hide ties</label>
<span class="notes">top {EXPLAINED} per system; green: judged relevant; highlighted: tokens the hit matched</span></div>
<div id="queries">{sections}</div>
<script>{SCRIPT}</script>
</body></html>
"""


def write_html(
    path: Path, dataset: RetrievalSet, results: list[SystemResult], settings: dict, charts: list[Path]
) -> None:
    path.write_text(render(dataset, results, settings, charts), encoding="utf-8")
