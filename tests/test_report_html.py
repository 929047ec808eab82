"""report.html: one self-contained file, well-formed, every query with BM25 and the model side by side.

The structure is checked with the standard library's HTML parser (no browser needed); when Chromium
is installed, a headless run also checks that the page's script orders the queries by the model's wins.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from ko_sparse.bench.report import write_report
from ko_sparse.bench.runner import run_benchmark
from ko_sparse.bench.systems import EmbeddedBM25, EmbeddedSparse
from ko_sparse.model.doc_only import SparseModel
from tests.test_bench import SMALL

VOID = {"meta", "img", "br", "input", "link", "hr"}


class Structure(HTMLParser):
    """Tag nesting, images, external references, and the query sections with their hit lists."""

    def __init__(self) -> None:
        super().__init__()
        self.stack, self.errors, self.images, self.external = [], [], [], []
        self.sections, self.lists, self.relevant, self.marks = [], 0, 0, 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href"):
            if attributes.get(name, "").startswith(("http:", "https:", "//")):
                self.external.append(attributes[name])
        if tag == "img":
            self.images.append(attributes["src"])
        if tag == "section" and attributes.get("class") == "query":
            self.sections.append(attributes)
        self.lists += tag == "ol"
        self.relevant += tag == "li" and attributes.get("class") == "relevant"
        self.marks += tag == "mark"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_mlm_dir):
    from ko_sparse.model.splade import load_encoder

    folder = tmp_path_factory.mktemp("report")
    model = SparseModel(load_encoder(tiny_mlm_dir, max_length=32))
    results = run_benchmark(SMALL, [EmbeddedBM25(), EmbeddedSparse(model, "tiny", 32)], hybrid=True)
    write_report(folder, SMALL, results, {"notes": ["a note <with> markup"]})
    return folder, results


def test_the_html_report_is_well_formed_and_self_contained(report):
    folder, _ = report
    page = (folder / "report.html").read_text(encoding="utf-8")
    structure = Structure()
    structure.feed(page)
    assert structure.errors == [] and structure.stack == []
    assert structure.external == [] and "<link" not in page and "<script src" not in page
    assert len(structure.images) == 2  # metrics.png and per_query.png, inlined
    for image in structure.images:
        assert image.startswith("data:image/png;base64,")
        assert base64.b64decode(image.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "a note &lt;with&gt; markup" in page


def test_every_query_shows_each_system_with_relevant_hits_marked_and_tokens_highlighted(report):
    folder, results = report
    structure = Structure()
    structure.feed((folder / "report.html").read_text(encoding="utf-8"))
    assert [s["data-qid"] for s in structure.sections] == list(SMALL.queries)
    assert structure.lists == len(SMALL.queries) * len(results)  # one hit list per system and query
    assert structure.relevant > 0 and structure.marks > 0
    bm25, sparse, hybrid = results
    for section in structure.sections:
        qid = section["data-qid"]
        assert float(section["data-d0"]) == pytest.approx(
            sparse.per_query["ndcg@10"][qid] - bm25.per_query["ndcg@10"][qid], abs=1e-6
        )
        assert float(section["data-d1"]) == pytest.approx(
            hybrid.per_query["ndcg@10"][qid] - bm25.per_query["ndcg@10"][qid], abs=1e-6
        )


def test_matched_tokens_add_up_to_the_embedded_scores(report):
    _, results = report
    for result in results[:2]:  # bm25 and sparse: their contributions are the score, term by term
        for qid, matches in result.matches.items():
            for doc_id, tokens in matches.items():
                assert sum(tokens.values()) == pytest.approx(result.run[qid][doc_id], rel=1e-4)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (apt-get install chromium)")
def test_headless_chromium_orders_the_queries_by_the_models_wins(report, tmp_path):
    folder, _ = report
    command = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        (folder / "report.html").as_uri(),
    ]
    pattern = r'<section class="query"[^>]*data-d0="([-0-9.]+)"'
    written = [float(value) for value in re.findall(pattern, (folder / "report.html").read_text(encoding="utf-8"))]
    assert written != sorted(written, reverse=True)  # in query order, so the script has something to do
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    deltas = [float(value) for value in re.findall(pattern, dom)]
    assert len(deltas) == len(SMALL.queries) and deltas == sorted(deltas, reverse=True)
