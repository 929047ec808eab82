"""The benchmarks compare equal work and record what the README table shows."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import common, table, train_step
from benchmarks.search import Seismic, recall, scipy_top_k
from ko_sparse.bench.inverted_index import InvertedIndex
from tests.test_inverted_index import random_sparse


def test_ko_sparse_losses_and_the_notebook_loops_compute_the_same_total(tokenizer):
    size = 4
    batch = train_step.triplet_batch(tokenizer, size, 32, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    vectors = torch.relu(torch.randn(3 * size, len(tokenizer), generator=generator))
    ours = train_step.vectorised_losses(*vectors.split(size), batch, size)
    theirs = train_step.notebook_losses(*vectors.split(size), batch, size)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_search_peers_find_the_exact_top_ten():
    documents, queries = random_sparse(400, 0), list(random_sparse(10, 1, density=0.05))
    exact = [scipy_top_k(documents, q) for q in queries]
    ours = [InvertedIndex(documents).search(q, 10)[0][0] for q in queries]
    assert recall(ours, exact) == pytest.approx(1.0)
    assert 0.5 < recall([Seismic(documents).search(q) for q in queries], exact) <= 1.0


def test_report_appends_a_json_line_and_the_table_shows_it(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    common.report("encode", 30.0, "documents/s", "SparseEncoder.encode", 20.0, target=1.2)
    common.report("encode", 12.0, "documents/s", "SparseEncoder.encode", 20.0, target=1.2)
    common.report("latency", 5.0, "ms", "BM25", 4.0, higher_is_better=False, target=0.5)
    lines = (tmp_path / "results" / "encode.jsonl").read_text().splitlines()
    assert [json.loads(line)["ratio"] for line in lines] == [1.5, 0.6]
    assert {"name", "value", "unit", "peer", "peer_value", "ratio", "machine"} <= set(json.loads(lines[0]))

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{table.START}\nold\n{table.END}\nafter\n")
    table.main(["--readme", str(readme)])
    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{table.END}\nafter\n")
    assert "| encode | 12.00 documents/s | SparseEncoder.encode | 20.00 | 0.60x | ≥ 1.2x: missed |" in text
    assert "| latency | 5.00 ms | BM25 | 4.00 | 0.80x | ≥ 0.5x: met |" in text


def test_scale_passages_are_distinct_mixed_and_deterministic(tmp_path):
    from benchmarks.index_scale import build_passages, prefix, sentences_by_source

    pools = sentences_by_source()
    assert len(pools) >= 6 and all(len(pool) > 500 for pool in pools.values())
    first = build_passages(300, tmp_path / "a.jsonl").read_text(encoding="utf-8")
    assert first == build_passages(300, tmp_path / "b.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in first.splitlines()]
    assert len(texts) == len(set(texts)) == 300
    origin = {sentence: name for name, pool in pools.items() for sentence in pool}
    mixed = sum(len({origin.get(s) for s in origin if s in text}) >= 2 for text in texts[:20])
    assert mixed >= 15  # sentences of different sources (a short sentence may hide inside a longer one)
    assert prefix(tmp_path / "a.jsonl", 10, tmp_path / "c.jsonl").read_text().splitlines() == first.splitlines()[:10]
