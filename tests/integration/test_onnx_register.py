"""ONNX packages on the live node: ML-Commons' ONNX Runtime engine serves the sparse model, `_predict`
equals the zip run in Python, and ingest + neural_sparse rank like the Python dot product."""

from __future__ import annotations

import json

import pytest

from ko_sparse.export.package import package_model
from tests.integration.parity import (
    DOCUMENTS,
    assert_queries_rank_like_python,
    cleaned_up,
    register,
)

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_packages(trained_tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx-packages")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in DOCUMENTS.values()))
    # model-side pruning keeps the barely trained model's queries under Lucene's 1,024-clause limit
    common = dict(max_length=128, prune_ratio=0.3, model_format="onnx")
    package_model(trained_tiny_model, folder / "bi", name="ko-sparse-it-onnx-bi", **common)
    package_model(
        trained_tiny_model, folder / "doc", mode="doc-only", idf_corpus=corpus, name="ko-sparse-it-onnx-doc", **common
    )
    return folder


def test_onnx_bi_encoder_deploys_predicts_and_ranks_like_python(opensearch_url, opensearch, ml, onnx_packages, group):
    index, pipeline = f"{group}-onnx-bi", f"{group}-onnx-bi-pipeline"
    result = register(
        opensearch_url, onnx_packages / "bi", "--model-group", group, "--pipeline", pipeline, "--index", index
    )
    (model,) = result["models"]
    assert model["function_name"] == "SPARSE_ENCODING" and model["max_relative_difference"] <= 1e-3
    on_node = ml.api.get_model(model_id=model["model_id"])
    assert (on_node["model_format"], on_node["model_state"]) == ("ONNX", "DEPLOYED")
    with cleaned_up(opensearch, index, pipeline):  # documents through the ONNX ingest pipeline, queries too
        assert_queries_rank_like_python(opensearch, index, onnx_packages / "bi", "SPARSE_ENCODING", model["model_id"])


def test_onnx_document_model_pairs_with_the_tokenizer_model(opensearch_url, opensearch, ml, onnx_packages, group):
    index, pipeline = f"{group}-onnx-doc", f"{group}-onnx-doc-pipeline"
    result = register(
        opensearch_url, onnx_packages / "doc", "--model-group", group, "--pipeline", pipeline, "--index", index
    )
    ids = {m["function_name"]: m["model_id"] for m in result["models"]}
    assert ml.api.get_model(model_id=ids["SPARSE_ENCODING"])["model_format"] == "ONNX"
    assert (
        ml.api.get_model(model_id=ids["SPARSE_TOKENIZE"])["model_format"] == "TORCH_SCRIPT"
    )  # no model file: format unused
    with cleaned_up(opensearch, index, pipeline):
        assert_queries_rank_like_python(
            opensearch, index, onnx_packages / "doc", "SPARSE_TOKENIZE", ids["SPARSE_TOKENIZE"]
        )
