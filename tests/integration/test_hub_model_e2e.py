"""An inference-free SparseEncoder given by Hub id (offline, from a cache fixture), with its own WordPiece
vocabulary (not A.X's): the multilingual-v1 layout through package, register, index and search on the node."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from ko_sparse.cli.main import cli
from ko_sparse.model.doc_only import load_model
from ko_sparse.model.token_strings import token_strings
from tests.hub_cache import ROUTER
from tests.integration.index_helpers import QUERIES, index_arguments, korean_passages, run_index, write_corpus


def search(url: str, index: str, *options: str) -> list[dict]:
    result = CliRunner().invoke(
        cli, ["search", "--host", url, "--index", index, "--mode", "sparse", *options, "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_hub_router_with_its_own_vocabulary_serves_end_to_end(
    offline_hub, opensearch, opensearch_url, ml, group, tmp_path
):
    packaged = CliRunner().invoke(cli, ["package", ROUTER, "--output", str(tmp_path / "pkg")])
    assert packaged.exit_code == 0, packaged.output
    registered = CliRunner().invoke(
        cli, ["register", "--host", opensearch_url, "--model", str(tmp_path / "pkg"), "--model-group", group, "--json"]
    )
    assert registered.exit_code == 0, registered.output  # register checks the cluster's _predict against ours
    ids = {m["function_name"]: m["model_id"] for m in json.loads(registered.output)["models"]}
    model = load_model(ROUTER)
    strings = token_strings(model.encoder.tokenizer)
    for text, weights in zip(QUERIES, ml.predict(ids["SPARSE_TOKENIZE"], QUERIES), strict=True):
        row = model.encode_queries([text])[0]
        assert weights == pytest.approx({strings[i]: float(w) for i, w in zip(row.indices, row.data, strict=True)})
    index = f"ko-sparse-test-hub-{uuid.uuid4().hex[:8]}"
    corpus = write_corpus(tmp_path / "docs.jsonl", korean_passages(60))
    try:
        summary = run_index(index_arguments(opensearch_url, index, corpus, tmp_path / "out", "--model", ROUTER))
        assert (summary["indexed"], summary["failed"]) == (60, 0)
        meta = opensearch.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["ko_sparse"]
        assert (meta["model"], meta["doc_only"]) == (ROUTER, True)
        here = search(opensearch_url, index, "--k", "10", *QUERIES)  # queries by the Hub id the index records
        there = search(opensearch_url, index, "--model-id", ids["SPARSE_TOKENIZE"], "--k", "10", *QUERIES)
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
    for ours, theirs in zip(here, there, strict=True):
        assert len(ours["hits"]) == 10
        assert [hit["doc_id"] for hit in ours["hits"]] == [hit["doc_id"] for hit in theirs["hits"]]
        assert [hit["score"] for hit in ours["hits"]] == pytest.approx([hit["score"] for hit in theirs["hits"]])


def test_the_ingest_pipeline_writes_a_small_vocabulary_into_seismic_with_the_exact_scores(
    offline_hub, opensearch, opensearch_url, ml, group, tmp_path
):
    """``--method seismic --encode pipeline``: the node's sparse_encoding processor writes raw token ids (a
    vocabulary within 32,768 ids needs no remapping); every hit scores the quantised dot product of the
    query with the document the local model encodes."""
    from ko_sparse.model.encode import encode_sparse
    from ko_sparse.opensearch.seismic import SLOTS, SeismicParameters, quantized_score
    from ko_sparse.workflows.query_encoder import LocalQueryEncoder

    model = load_model(ROUTER)
    assert len(model.encoder.tokenizer) <= SLOTS
    packaged = CliRunner().invoke(cli, ["package", ROUTER, "--output", str(tmp_path / "pkg")])
    assert packaged.exit_code == 0, packaged.output
    register = ["register", "--host", opensearch_url, "--model", str(tmp_path / "pkg"), "--model-group", group]
    registered = CliRunner().invoke(cli, [*register, "--json"])
    assert registered.exit_code == 0, registered.output
    ids = {m["function_name"]: m["model_id"] for m in json.loads(registered.output)["models"]}
    index = f"ko-sparse-test-hub-ann-{uuid.uuid4().hex[:8]}"
    passages = korean_passages(30)
    corpus = write_corpus(tmp_path / "docs.jsonl", passages)
    options = ["--encode", "pipeline", "--model-id", ids["SPARSE_ENCODING"], "--model", ROUTER, "--method", "seismic"]
    options += ["--seismic", "approximate_threshold=1", "--seismic", "quantization_ceiling_ingest=8", "--force-merge"]
    try:
        summary = run_index(index_arguments(opensearch_url, index, corpus, tmp_path / "out", *options))
        assert (summary["indexed"], summary["failed"], summary["method"]) == (30, 0, "seismic")
        mapping = opensearch.indices.get_mapping(index=index)[index]["mappings"]
        assert mapping["properties"]["embedding"]["type"] == "sparse_vector"
        wide = ["--method-parameter", "k=30", "--method-parameter", "top_n=30", "--method-parameter", "heap_factor=100"]
        found = search(opensearch_url, index, "--k", "5", *wide, *QUERIES[:4])
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
    texts = [text for _, text in passages]
    vectors = encode_sparse(model.encoder, texts, 16, model.lengths.document)
    documents = {
        doc_id: {int(i): float(w) for i, w in zip(vectors[n].indices, vectors[n].data, strict=True)}
        for n, (doc_id, _) in enumerate(passages)
    }
    ceilings = SeismicParameters(**mapping["_meta"]["ko_sparse"]["method_parameters"]).ceilings
    encoder = LocalQueryEncoder(model)
    checked = 0
    for result in found:
        query = encoder.token_ids(result["query"])
        for hit in result["hits"]:
            assert hit["score"] == pytest.approx(quantized_score(query, documents[hit["doc_id"]], ceilings), rel=2e-3)
            checked += 1
    assert checked >= 10
