"""A doc-only model trained with the tiny preset through package, register and bench on the node."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.model.doc_only import load_model
from ko_sparse.model.token_strings import token_strings
from tests.test_bench import SMALL


@pytest.fixture(scope="module")
def doc_only_model(tmp_path_factory):
    output = tmp_path_factory.mktemp("doc-only")
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--preset",
            "tiny",
            "--mode",
            "doc-only",
            "--output-dir",
            str(output),
            "--max-steps",
            "20",
            "--set",
            "model.base_model=tiny:32x1",
            "--set",
            "eval.every_steps=20",
            "--set",
            "eval.num_distractors=100",
        ],
    )
    assert result.exit_code == 0, result.output
    return output / "best"


@pytest.fixture(scope="module")
def beir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beir")
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "text": t}, ensure_ascii=False) + "\n" for d, t in SMALL.corpus.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n" for q, t in SMALL.queries.items())
    )
    (folder / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{g}\n" for q, judged in SMALL.qrels.items() for d, g in judged.items())
    )
    return folder


def test_package_register_and_bench(opensearch_url, ml, doc_only_model, trained_tiny_model, beir, tmp_path):
    packaged = CliRunner().invoke(
        cli, ["package", str(doc_only_model), "--output", str(tmp_path / "pkg"), "--max-length", "64"]
    )
    assert packaged.exit_code == 0, packaged.output
    assert "SPARSE_TOKENIZE" in packaged.output
    registered = CliRunner().invoke(
        cli,
        [
            "register",
            "--host",
            opensearch_url,
            "--model",
            str(tmp_path / "pkg"),
            "--model-group",
            "ko-sparse-test-doc-only",
            "--json",
        ],
    )
    assert registered.exit_code == 0, registered.output
    ids = {m["function_name"]: m["model_id"] for m in json.loads(registered.output)["models"]}
    try:
        model = load_model(doc_only_model)
        strings = token_strings(model.encoder.tokenizer)
        for text, weights in zip(
            SMALL.queries.values(), ml.predict(ids["SPARSE_TOKENIZE"], list(SMALL.queries.values())), strict=True
        ):
            row = model.encode_queries([text])[0]
            assert weights == pytest.approx(
                {strings[i]: float(w) for i, w in zip(row.indices, row.data, strict=True)}, rel=1e-5
            )
        bench = CliRunner().invoke(
            cli,
            [
                "bench",
                "--index",
                str(beir),
                "--engine",
                "opensearch",
                "--host",
                opensearch_url,
                "--model",
                str(trained_tiny_model),
                "--model",
                str(doc_only_model),
                "--prune",
                "top_k:32",
                "--output",
                str(tmp_path / "report"),
            ],
        )
        assert bench.exit_code == 0, bench.output
    finally:
        for model_id in ids.values():
            ml.remove(model_id)
    systems = json.loads((tmp_path / "report" / "results.json").read_text())["systems"]
    sparse = [s for s in systems if s["name"].startswith("sparse[")]
    bi, _, doc, doc_pruned = sparse  # in --model order, each followed by its --prune variant
    assert bi["index"]["details"]["queries"] == "encoded by the model"
    assert doc["index"]["details"]["queries"] == "IDF-weighted tokens (doc-only)"
    assert doc_pruned["name"].endswith("|top_k=32]") and doc_pruned["index"]["details"]["pruning"] == "top_k=32"
    assert doc_pruned["index"]["details"]["mean_terms_per_document"] <= 32
    assert doc_pruned["index"]["size_bytes"] <= doc["index"]["size_bytes"]
    # side by side with latency; the speed itself is measured in benchmarks/, not asserted here
    for system in (bi, doc, doc_pruned):
        assert set(system["latency_ms"]) >= {"p50", "p95", "p99"} and system["latency_ms"]["p50"] > 0
