"""The README's chain on the live node: package -> register --pipeline --index docs -> index --index docs ->
search --index docs. One index specification: what register creates, index and search take."""

from __future__ import annotations

import json

from ko_sparse.model.lengths import LENGTHS_FILE
from tests.integration.conftest import DOCUMENTS, QUERIES
from tests.integration.parity import invoke, register


def test_register_index_and_search_one_index(opensearch_url, opensearch, trained_tiny_model, packages, group, tmp_path):
    assert json.loads((trained_tiny_model / LENGTHS_FILE).read_text()) == {"document": 32, "query": 32}
    index, pipeline = f"{group}-docs", f"{group}-ingest"
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in DOCUMENTS.items())
    )
    no_model = invoke(opensearch_url, "index", "--index", index, "--corpus", str(corpus))
    assert no_model.exit_code == 2 and "--encode pipeline needs --model-id" in no_model.output  # no index yet
    try:
        registered = register(
            opensearch_url, packages / "bi", "--model-group", group, "--pipeline", pipeline, "--index", index
        )
        model_id = registered["models"][0]["model_id"]
        meta = opensearch.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["ko_sparse"]
        assert (meta["encode"], meta["model_id"]) == ("pipeline", model_id)
        assert meta["max_length"] == meta["query_length"] == 128  # the package's, not the model's 32
        indexed = invoke(  # as the README: the model is the one register recorded in the index
            opensearch_url, "index", "--index", index, "--corpus", str(corpus), "--output", str(tmp_path / "run"),
            "--json",
        )  # fmt: skip
        assert indexed.exit_code == 0, indexed.output
        assert json.loads(indexed.output)["documents_in_index"] == len(DOCUMENTS)
        assert (
            opensearch.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["ko_sparse"]["model_id"] == model_id
        )
        found = invoke(opensearch_url, "search", "--index", index, "--k", "3", "--json", QUERIES[0])
        assert found.exit_code == 0, found.output
        (result,) = json.loads(found.output)
        assert len(result["hits"]) == 3 and {hit["doc_id"] for hit in result["hits"]} <= set(DOCUMENTS)
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
        for name in (pipeline, f"{index}-sparse-encoding"):
            opensearch.ingest.delete_pipeline(id=name, ignore=[404])
