"""ko-sparse bench: sets, BEIR errors, fusion, morphemes, and an embedded run end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ko_sparse.bench.runner import run_benchmark
from ko_sparse.bench.systems import EmbeddedBM25, EmbeddedSparse, reciprocal_rank_fusion
from ko_sparse.cli.main import cli
from ko_sparse.data.retrieval_sets import RetrievalSet, load_set, medical, miracl_perturbed
from ko_sparse.errors import DataError
from ko_sparse.opensearch.query_tokens import QueryTokenLimits
from ko_sparse.text.morphemes import MorphemeTokenizer

SMALL = RetrievalSet(
    "small",
    corpus={
        "d1": "당뇨병 환자는 혈당을 꾸준히 관리해야 한다.",
        "d2": "고혈압 약은 매일 같은 시간에 먹는다.",
        "d3": "감기에 걸리면 충분히 쉬어야 한다.",
        "d4": "당뇨병에 좋은 음식은 채소와 통곡물이다.",
        "d5": "서울에서 부산까지 기차로 두 시간 반이 걸린다.",
    },
    queries={"q1": "당뇨병에 좋은 음식", "q2": "고혈압 약 복용 시간", "q3": "부산 가는 기차", "q4": "판단 불가"},
    qrels={"q1": {"d4": 2, "d1": 1}, "q2": {"d2": 1}, "q3": {"d5": 1, "d3": 0}, "q4": {"d3": 0}},
    description="five sentences",
    licence="test",
)


def test_only_queries_with_a_relevant_document_are_kept():
    assert set(SMALL.queries) == {"q1", "q2", "q3"}


def test_medical_set_is_built_as_documented():
    dataset = medical()
    assert len(dataset.queries) == 60 and len(dataset.corpus) == 1020
    relevant = {doc for qid in dataset.queries for doc, grade in dataset.qrels[qid].items() if grade > 0}
    assert all(dataset.corpus[doc].startswith("[medical]") for doc in relevant)
    autorag = [text for doc, text in dataset.corpus.items() if doc.startswith("autorag:")]
    assert len(autorag) == 720 and not any(text.startswith("[medical]") for text in autorag)
    assert any("saturated" in note for note in dataset.notes)


def test_perturbed_sets_carry_the_clean_wording():
    josa = miracl_perturbed("josa")
    clean = load_set("miracl-ko")
    assert len(josa.corpus) == 2835 and set(josa.clean_queries) == set(josa.queries)
    qid = next(iter(josa.queries))
    assert josa.clean_queries[qid] == clean.queries[qid] != josa.queries[qid]


def test_unknown_set_lists_the_available_ones():
    result = CliRunner().invoke(cli, ["bench", "--index", "nope", "--systems", "bm25"])
    assert result.exit_code == 2
    assert "unknown benchmark set; available: medical, miracl-ko" in result.output
    assert "miracl-ko-perturbed:josa" in result.output


def write_beir(folder, corpus_lines=None, qrels_text="query-id\tcorpus-id\tscore\nq1\td1\t1\n"):
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(
        "\n".join(corpus_lines or ['{"_id": "d1", "title": "당뇨", "text": "당뇨병 치료"}']) + "\n", encoding="utf-8"
    )
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "당뇨병"}\n', encoding="utf-8")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(qrels_text, encoding="utf-8")
    return folder


def test_beir_folder_loads(tmp_path):
    dataset = load_set(str(write_beir(tmp_path / "beir")))
    assert dataset.corpus == {"d1": "당뇨 당뇨병 치료"} and dataset.qrels == {"q1": {"d1": 1}}


def test_beir_errors_name_the_file_and_line(tmp_path):
    broken = write_beir(tmp_path / "a", ['{"_id": "d1", "text": "가"}', '{"_id": "d2", "text": '])
    with pytest.raises(DataError, match=r"corpus\.jsonl:2: not valid JSON"):
        load_set(str(broken))
    missing = write_beir(tmp_path / "b")
    (missing / "queries.jsonl").unlink()
    with pytest.raises(DataError, match=r"queries\.jsonl: file not found"):
        load_set(str(missing))
    bad_qrels = write_beir(tmp_path / "c", qrels_text="query-id\tcorpus-id\tscore\nq1\td1\tyes\n")
    with pytest.raises(DataError, match=r"test\.tsv:2: expected 'query-id corpus-id score'"):
        load_set(str(bad_qrels))


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion({"q": {"a": 9, "b": 5}}, {"q": {"b": 3, "c": 1}}, k=10, rrf_k=60)
    assert fused["q"] == pytest.approx({"b": 1 / 62 + 1 / 61, "a": 1 / 61, "c": 1 / 62})
    assert list(fused["q"]) == ["b", "a", "c"]


def test_morphemes_drop_particles_and_endings():
    tokenize = MorphemeTokenizer()
    assert tokenize(["당뇨병에 좋은 음식은?", "당뇨병은"]) == [["당뇨병", "좋", "음식"], ["당뇨병"]]


def test_embedded_bm25_ranks_lexical_matches_first():
    (result,) = run_benchmark(SMALL, [EmbeddedBM25()], hybrid=False)
    assert next(iter(result.run["q1"])) in {"d4", "d1"} and "d4" in result.run["q1"]
    assert result.metrics["recall@10"] == pytest.approx(1.0)
    assert set(result.latency_ms) == {"p50", "p95", "p99", "mean"}


def test_sparse_scores_are_the_exact_dot_product(tiny_encoder):
    import numpy as np

    from ko_sparse.model.doc_only import SparseModel
    from ko_sparse.model.encode import encode_sparse

    system = EmbeddedSparse(SparseModel(tiny_encoder), "tiny", max_length=64)
    system.index(SMALL.corpus)
    run = system.search(SMALL.queries, k=5).run
    documents = encode_sparse(tiny_encoder, list(SMALL.corpus.values()))
    for qid, text in SMALL.queries.items():
        expected = (documents @ encode_sparse(tiny_encoder, [text]).T).toarray().ravel()
        for doc_id, score in run[qid].items():
            assert score == pytest.approx(expected[list(SMALL.corpus).index(doc_id)], rel=1e-5)
        assert len(run[qid]) == int(np.count_nonzero(expected))


@pytest.mark.slow  # encodes and benchmarks a set end to end: 80 s of CPU
def test_bench_cli_writes_the_report(tiny_encoder, tmp_path):
    tiny_encoder.save(str(tmp_path / "model"))
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "--index",
            "miracl-ko-perturbed:koen",
            "--model",
            str(tmp_path / "model"),
            "--max-length",
            "64",
            "--output",
            str(tmp_path / "report"),
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "report" / "results.json").read_text())
    names = [system["name"] for system in payload["systems"]]
    assert names == ["bm25", "sparse[model]", "hybrid[model]"]
    bm25, sparse, hybrid = payload["systems"]
    assert set(bm25["metrics"]) == {"recall@5", "recall@10", "recall@20", "recall@100", "mrr@10", "ndcg@10"}
    assert bm25["p_values_vs_bm25"] == {} and set(sparse["p_values_vs_bm25"]) == set(bm25["metrics"])
    assert len(bm25["per_query"]["ndcg@10"]) == payload["dataset"]["queries"] == 9
    assert bm25["drop_vs_clean_queries"]["ndcg@10"] == pytest.approx(
        bm25["clean_query_metrics"]["ndcg@10"] - bm25["metrics"]["ndcg@10"]
    )
    assert sparse["index"]["documents"] == 2835 and sparse["index"]["documents_per_second"] > 0
    assert hybrid["index"] is None
    assert payload["settings"]["engine"] == "embedded" and "torch_version" in payload["settings"]
    assert (tmp_path / "report" / "metrics.png").stat().st_size > 10_000
    assert "clean -> perturbed" in (tmp_path / "report" / "report.md").read_text()


def test_bm25_index_size_is_measured_from_bm25s_arrays():
    bm25 = EmbeddedBM25()
    stats = bm25.index(SMALL.corpus)
    arrays = bm25.bm25.scores
    assert stats.size_bytes == arrays["data"].nbytes + arrays["indices"].nbytes + arrays["indptr"].nbytes
    assert stats.size_bytes != sum(len(set(doc)) for doc in bm25.tokenizer(SMALL.corpus.values())) * 8


def test_query_tokens_are_cut_and_clipped_to_what_the_cluster_accepts_and_counted():
    limits = QueryTokenLimits(max_clauses=3)
    assert limits.apply({"a": 1.0, "b": 70.0}) == {"a": 1.0, "b": 64.0}
    assert limits.apply({"a": 1.0, "b": 2.0, "c": 3.0, "d": 100.0, "e": 65.0}) == {"c": 3.0, "d": 64.0, "e": 64.0}
    assert limits.apply({"a": 1.0}) == {"a": 1.0}
    assert (limits.truncated_queries, limits.clipped_queries, limits.clipped_tokens) == (1, 2, 3)
    notes = limits.notes("sparse[x]")
    assert len(notes) == 2
    assert "1 queries had more tokens than the cluster's 3 boolean clauses" in notes[0]
    assert "3 query token weights in 2 queries were above 64" in notes[1]
    assert QueryTokenLimits().notes("sparse[x]") == []


def test_relevant_documents_missing_from_the_corpus_are_named_and_strict_refuses(tmp_path):
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tgone-2\t1\nq1\tgone-1\t2\nq1\tunjudged\t0\n"
    folder = write_beir(tmp_path / "beir", qrels_text=qrels)
    arguments = ["bench", "--index", str(folder), "--systems", "bm25", "--output", str(tmp_path / "report")]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    warning = "the qrels name 2 relevant document(s) that the corpus lacks (gone-1, gone-2)"
    assert f"warning: {warning}" in result.output
    assert warning in (tmp_path / "report" / "report.md").read_text()
    strict = CliRunner().invoke(cli, [*arguments, "--strict"])
    assert strict.exit_code == 2 and warning in strict.output and "(--strict)" in strict.output


@pytest.mark.parametrize("name", ["medical", "miracl-ko", "autorag-ko", "allganize-ko", "miracl-ko-perturbed:josa"])
def test_bundled_sets_judge_only_documents_of_their_corpus(name):
    assert load_set(name).missing_relevant_documents() == []


def test_the_drop_reads_as_a_drop():
    from ko_sparse.bench.report import drop_table
    from ko_sparse.bench.runner import SystemResult

    metrics = {"ndcg@10": 0.4878, "recall@100": 0.9}
    result = SystemResult("bm25", metrics, {}, {}, None, {}, clean_metrics={"ndcg@10": 0.5, "recall@100": 0.85})
    row = drop_table([result]).splitlines()[-1]
    assert row == "bm25 | 0.5000 -> 0.4878 (-0.0122) | 0.8500 -> 0.9000 (+0.0500)"
    assert result.drop()["ndcg@10"] == pytest.approx(0.0122)  # results.json keeps the drop (clean minus perturbed)


def test_list_shows_query_counts_for_every_set():
    result = CliRunner().invoke(cli, ["bench", "--list"])
    assert result.exit_code == 0, result.output
    perturbed = [line for line in result.output.splitlines() if line.startswith("miracl-ko-perturbed:")]
    assert len(perturbed) == 6
    for line in perturbed:
        kind = line.split()[0].removeprefix("miracl-ko-perturbed:")
        assert f"{len(miracl_perturbed(kind).queries)} queries, 2,835 documents" in line, line


def test_the_chart_legend_covers_no_bar():
    from ko_sparse.bench.report import chart
    from ko_sparse.bench.runner import MEASURES, SystemResult

    names = ["bm25", "sparse[tiny/best]", "sparse[tiny/best|max_ratio:0.1]", "hybrid[tiny/best]"]
    results = [SystemResult(name, dict.fromkeys(MEASURES, 0.95), {}, {}, None, {}) for name in names]
    figure = chart(results, "medical")
    figure.canvas.draw()
    (axis,) = figure.axes
    legend = axis.get_legend().get_window_extent()
    assert len(axis.patches) == len(names) * len(MEASURES)
    assert not any(bar.get_window_extent().overlaps(legend) for bar in axis.patches)
    assert figure.get_window_extent().contains(legend.x0, legend.y0)  # and the legend is inside the image


def test_pruned_variants_count_the_encoding_they_reuse(tiny_encoder):
    from ko_sparse.model.doc_only import SparseModel
    from ko_sparse.model.pruning import Pruning

    full = EmbeddedSparse(SparseModel(tiny_encoder), "tiny", max_length=64)
    pruned = EmbeddedSparse(full.model, "tiny", 64, pruning=Pruning.parse("top_k:5"), source=full)
    full_stats, pruned_stats = full.index(SMALL.corpus), pruned.index(SMALL.corpus)
    encoding = full.encoding_seconds  # the details hold it rounded to the millisecond; compare the exact time
    assert encoding > 0 and pruned_stats.details["encoding_seconds"] == full_stats.details["encoding_seconds"]
    assert pruned_stats.seconds >= encoding
    assert "its encoding time is included" in pruned_stats.details["encoding"]
    assert pruned_stats.documents_per_second <= len(SMALL.corpus) / encoding
