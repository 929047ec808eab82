"""The benchmarks compare equal work and record what the speed page's table (docs/speed.md) shows."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from benchmarks import __main__ as entry
from benchmarks import common, table, train_step
from benchmarks.search import Seismic, recall, scipy_top_k
from ko_sparse.bench.inverted_index import InvertedIndex
from tests.test_inverted_index import random_sparse


def test_ko_sparse_losses_and_the_notebook_loops_compute_the_same_total(tiny_encoder):
    from ko_sparse.losses import NotebookSpladeLoss
    from ko_sparse.model.splade import special_token_ids

    size, tokenizer = 4, tiny_encoder.tokenizer
    features = train_step.triplet_features(tokenizer, size, 32, torch.device("cpu"))
    loss = NotebookSpladeLoss(tiny_encoder, train_step.CONFIG, special_token_ids(tokenizer), doc_only=False)
    generator = torch.Generator().manual_seed(0)
    vectors = torch.relu(torch.randn(3 * size, len(tokenizer), generator=generator))
    ours = train_step.vectorised_losses(loss, *vectors.split(size), features)
    theirs = train_step.notebook_losses(*vectors.split(size), features)
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
    assert {"name", "value", "unit", "peer", "peer_value", "ratio", "ratio_range", "repeats", "machine"} <= set(
        json.loads(lines[0])
    )

    page = tmp_path / "speed.md"
    page.write_text(f"# x\n{table.START}\nold\n{table.END}\nafter\n")
    table.main(["--page", str(page)])
    text = page.read_text()
    assert "old" not in text and text.endswith(f"{table.END}\nafter\n")
    assert "| encode | 12.00 (12.00–12.00) documents/s | SparseEncoder.encode | 20.00 (20.00–20.00) | 0.60x" in text
    assert "≥ 1.2x: missed | 1 |" in text
    assert "| latency | 5.00 (5.00–5.00) ms | BM25 | 4.00 (4.00–4.00) | 0.80x (0.80x–0.80x) | ≥ 0.5x: met |" in text


def test_repeated_figures_are_medians_with_ranges_and_the_verdict_follows_the_median(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    # one lucky repeat (ratio 58x) must not decide the verdict: the median ratio (6x) does
    record = common.report("losses", [60.0, 580.0, 59.0, 61.0, 62.0], "steps/s", "loops", [10.0] * 5, target=10.0)
    assert record["value"] == 61.0 and record["value_range"] == [59.0, 580.0]
    assert record["ratio"] == 6.1 and record["ratio_range"] == [5.9, 58.0]
    assert record["repeats"] == 5
    page = tmp_path / "speed.md"
    page.write_text(f"{table.START}\n{table.END}\n")
    table.main(["--page", str(page)])
    assert "| 6.10x (5.90x–58.00x) | ≥ 10x: missed | 5 |" in page.read_text()


def test_benchmarks_refuse_fewer_than_five_repeats():
    with pytest.raises(SystemExit):
        common.arguments(["--repeat", "3"], "", "")
    assert common.arguments([], "", "").repeat == common.MIN_REPEATS == 5


def test_paired_timing_gives_both_sides_the_same_warm_up_and_repeats():
    calls = []
    ours, theirs = common.paired_timed(lambda: calls.append("ours"), lambda: calls.append("theirs"), 5, warmup=1)
    assert len(ours) == len(theirs) == 5
    assert calls == ["ours", "theirs"] * 6


def test_the_evaluation_peer_runs_the_notebooks_own_forward_and_agrees(tiny_encoder, monkeypatch):
    from benchmarks import evaluation
    from ko_sparse.evaluation.synonym_ranking import SynonymRankingEvaluator
    from ko_sparse.losses import notebook_reference

    pairs = [("당뇨병", "당뇨"), ("고혈압", "혈압"), ("감기", "몸살"), ("기차", "열차")]
    evaluator = SynonymRankingEvaluator(pairs, tiny_encoder.tokenizer, num_distractors=40, depth=10**9)
    calls = []
    original = notebook_reference.splade_forward
    monkeypatch.setattr(notebook_reference, "splade_forward", lambda *a: calls.append(1) or original(*a))
    notebook_mrr = evaluation.notebook_evaluation(tiny_encoder, evaluator)
    assert len(calls) == 1 + len(evaluator.anchors)  # one candidate batch, then each anchor alone
    assert notebook_mrr == pytest.approx(evaluator.evaluate(tiny_encoder)["mrr"], abs=1e-6)


def test_figures_measured_elsewhere_are_recorded_and_unmeasured_ones_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    page = tmp_path / "speed.md"
    page.write_text(f"{table.START}\n{table.END}\n")
    monkeypatch.setattr(table, "SPEED_PAGE", page)
    table.main([])
    assert "| gpu_encode | not measured: needs a GPU (benchmarks/gpu_check.sh) |" in page.read_text()
    printed = tmp_path / "gpu_check.jsonl"
    line = {
        "name": "gpu_encode",
        "value": 900.0,
        "unit": "documents/s",
        "peer": "SparseEncoder.encode",
        "peer_value": 600.0,
        "ratio": 1.5,
        "machine": "NVIDIA H200",
        "date": "2026-11-28T00:00:00+00:00",
    }
    full_size = {**line, "name": "gpu_encode_compiled", "model": common.FULL_MODEL}  # a row named "... [full size]"
    printed.write_text("NVIDIA H200, 143771 MiB\n" + json.dumps(line) + "\n" + json.dumps(full_size) + "\n")
    table.record([str(printed)])
    assert json.loads((tmp_path / "results" / "gpu_encode.jsonl").read_text()) == line
    text = page.read_text()
    assert "| gpu_encode | 900 documents/s | SparseEncoder.encode | 600 | 1.50x |" in text
    assert "| gpu_encode_compiled [full size] | 900 documents/s |" in text
    assert "gpu_encode | not measured" not in text
    assert "gpu_encode_compiled | not measured" not in text


def test_onnx_benchmark_runs_the_production_size_stand_in_unless_quick():
    from benchmarks import onnx_speed

    assert onnx_speed.sizes(common.arguments(["--quick"], "", "").quick) == onnx_speed.QUICK
    full = onnx_speed.sizes(common.arguments(["--size", "full"], "", "").quick)
    assert full == onnx_speed.FULL and full["model"] == common.FULL_MODEL


def test_onnx_benchmark_prunes_queries_just_enough_for_the_clause_limit(tiny_encoder):
    from benchmarks import onnx_speed
    from ko_sparse.model.encode import encode_sparse

    queries = ["당뇨병 치료", "서울에서 부산까지 기차로 얼마나 걸려?"]
    ratio = onnx_speed.query_prune_ratio(tiny_encoder, queries, 32)
    vectors = encode_sparse(tiny_encoder, queries, 32, 32)
    kept = [int((row.data > ratio * row.data.max()).sum()) for row in vectors]
    assert max(kept) <= onnx_speed.MAX_QUERY_TOKENS
    if ratio > 0:
        smaller = round(ratio - 0.1, 1)
        assert max(int((row.data > smaller * row.data.max()).sum()) for row in vectors) > onnx_speed.MAX_QUERY_TOKENS


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


def test_full_size_figures_are_rows_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    common.report("encode", [10.0] * 5, "documents/s", "peer", [5.0] * 5, model="tiny:64x2")
    common.report("encode", [2.0] * 5, "documents/s", "peer", [1.0] * 5, model=common.FULL_MODEL)
    common.report("encode", [12.0] * 5, "documents/s", "peer", [6.0] * 5, model="tiny:64x2")
    rows = {record["name"]: record["value"] for record in table.latest_records()}
    assert rows == {"encode": 12.0, "encode [full size]": 2.0}


def test_the_packaging_peer_traces_the_same_splade_forward_as_ko_sparse(tiny_encoder, tmp_path):
    from benchmarks.delivery import hand_package
    from ko_sparse.export.sparse_module import eager_module, model_inputs

    tiny_encoder.save(str(tmp_path / "model"))
    hand_package(str(tmp_path / "model"), str(tmp_path / "by-hand"), "64")
    traced = torch.jit.load(str(tmp_path / "by-hand" / "model.pt"))
    inputs = model_inputs(tiny_encoder, ["당뇨병 치료 방법", "고혈압 약을 먹으면 안 되는 음식"], 64)
    with torch.no_grad():
        theirs, ours = traced(inputs)["output"], eager_module(tiny_encoder, 0.0)(inputs)["output"]
    kept = ours.abs().sum(dim=0) > 0  # ko-sparse also zeroes the special tokens' ids
    assert torch.allclose(theirs[:, kept], ours[:, kept], atol=1e-5)
    assert (tmp_path / "by-hand" / "model.zip").stat().st_size > 0


def test_a_measured_process_reports_its_own_peak_memory_and_a_failure_names_the_command():
    import sys

    small = common.measured_process([sys.executable, "-c", "print('{\"ok\": 1}')"])
    large = common.measured_process([sys.executable, "-c", "held = b'x' * (300 * 2**20)"])
    assert small.json() == {"ok": 1}
    assert large.peak_mb - small.peak_mb > 250
    with pytest.raises(SystemExit, match="failed"):
        common.measured_process([sys.executable, "-c", "raise SystemExit(3)"])


def test_all_skips_a_benchmark_whose_peer_is_missing_and_runs_the_others(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "opensearch_py_ml", None)  # not installed, as after `make install`
    ran = []
    monkeypatch.setattr(entry, "run", lambda module, argv, function="main": ran.append(module))
    entry.run_all(["--quick"])
    assert "benchmarks.delivery" not in ran
    assert ran[-1] == "benchmarks.table" and "benchmarks.encoding" in ran and "benchmarks.onnx_speed" in ran
    assert "skipped: delivery needs opensearch-py-ml (pip install -e '.[benchmarks]')" in capsys.readouterr().err


def test_scale_vectors_look_like_a_korean_model_and_stream_by_batch():
    from benchmarks.method_scale import BATCH, DOCUMENT_IDS, MAX_WEIGHT, QUERY_IDS, TokenStatistics

    stats = TokenStatistics()
    assert 10_000 < len(stats.used) < 32_768  # ids Korean text uses: a SEISMIC field's remapping holds them all
    assert (stats.used >= 32_768).any()  # and many sit above the 16-bit limit
    whole = stats.documents(0, 2 * BATCH)
    sizes = whole.getnnz(axis=1)
    assert sizes.min() >= DOCUMENT_IDS[0] and sizes.max() <= DOCUMENT_IDS[1]
    assert whole.data.min() > 0 and whole.data.max() <= MAX_WEIGHT
    assert set(whole.indices) <= set(stats.used.tolist())
    second = stats.documents(BATCH, BATCH)  # a batch is the same whoever generates it, and whenever
    assert (second != whole[BATCH:]).nnz == 0
    queries = stats.queries(40)
    assert all(QUERY_IDS[0] <= len(q) <= QUERY_IDS[1] for q in queries)
    assert queries == stats.queries(40)


def test_the_seismic_figure_reports_the_best_recall_when_no_setting_reaches_the_goal():
    from benchmarks.method_scale import chosen_setting

    def row(recall: float, p50: float) -> dict:
        return {"recall_at_10": recall, "clients_1": {"p50_ms": p50}}

    fast_enough, faster_miss = row(0.93, 6.0), row(0.71, 3.0)
    assert chosen_setting([row(0.95, 9.0), fast_enough, faster_miss]) is fast_enough
    best_recall = row(0.76, 7.3)
    assert chosen_setting([row(0.72, 7.0), row(0.74, 6.0), best_recall]) is best_recall


def test_a_seismic_experiment_with_index_parameters_never_stands_in_for_the_defaults_figure():
    from argparse import Namespace

    from benchmarks.method_scale import figure_name

    assert figure_name(Namespace(documents=100_000, seismic=None)) == "index_scale_seismic_query_p50_100000"
    named = figure_name(Namespace(documents=100_000, seismic=["n_postings=17"]))
    assert named == "index_scale_seismic_query_p50_100000_n_postings-17"
