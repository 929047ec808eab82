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
