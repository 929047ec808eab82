"""The production-size stand-in (A.X-Encoder-base's architecture, ~150 M parameters, random weights) through
train -> package -> register -> ingest -> neural_sparse on the live node: nothing is only tested small."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from opensearchpy import helpers

from ko_sparse.cli.main import cli
from ko_sparse.data.jsonl import read_jsonl
from ko_sparse.export.reference import REFERENCES
from ko_sparse.opensearch.ml_commons import CHUNK_SIZE
from ko_sparse.resources import RETRIEVAL_DIR
from ko_sparse.train.history import TrainingHistory
from tests.integration.parity import package_files, python_top10

pytestmark = pytest.mark.slow

MIRACL = RETRIEVAL_DIR / "miracl-ko-dev-judged"
DOCUMENTS = {r["docid"]: f"{r['title']} {r['text']}" for r in list(read_jsonl(MIRACL / "corpus.jsonl"))[:300]}
QUERIES = [r["text"] for r in list(read_jsonl(MIRACL / "queries_clean.jsonl"))[:4]]


def invoke(*arguments: str) -> str:
    result = CliRunner().invoke(cli, list(arguments))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_full_size_model_trains_packages_registers_ingests_and_ranks_like_python(
    opensearch_url, opensearch, group, tmp_path
):
    run, package = tmp_path / "run", tmp_path / "package"
    invoke(
        "train", "--preset", "tiny", "--max-steps", "2", "--output-dir", str(run),
        "--set", "model.base_model=random:ax-encoder-base", "--set", "model.max_length=32",
        "--set", "training.batch_size=2", "--set", "training.log_steps=1", "--set", "eval.every_steps=2",
        "--set", "eval.num_distractors=20", "--set", "eval.max_anchors=10",
    )  # fmt: skip
    history = TrainingHistory.load(run / "training_history.json")
    assert [r["step"] for r in history.train] == [1, 2] and history.train[-1]["peak_memory_gb"] > 1.0

    printed = invoke("package", str(run / "final"), "--output", str(package), "--max-length", "128")
    assert "trace verification OK" in printed and "peak memory" in printed
    (artifact,) = json.loads((package / "package.json").read_text())["artifacts"]
    assert artifact["size"] > 400_000_000 and artifact["size"] // CHUNK_SIZE >= 40  # a real full-size upload

    index, pipeline = f"{group}-full", f"{group}-full-pipeline"
    options = ["--host", opensearch_url, "--model-group", group, "--json"]
    first = json.loads(invoke("register", "--model", str(package), "--pipeline", pipeline, "--index", index, *options))
    (model,) = first["models"]
    assert not model["reused"] and model["max_relative_difference"] <= 1e-4  # _predict equals Python
    again = json.loads(invoke("register", "--model", str(package), *options))
    assert again["models"][0] == {**again["models"][0], "model_id": model["model_id"], "reused": True}
    try:
        actions = ({"_index": index, "_id": doc_id, "text": text} for doc_id, text in DOCUMENTS.items())
        # the node encodes every document with the full-size model: small bulk requests, each given time
        indexed = helpers.bulk(
            opensearch, actions, chunk_size=10, request_timeout=600, refresh=True, raise_on_error=False
        )
        assert indexed == (len(DOCUMENTS), [])
        files = package_files(package)
        encoded = REFERENCES["SPARSE_ENCODING"](files["SPARSE_ENCODING"], list(DOCUMENTS.values()))
        for query in QUERIES:
            expected = python_top10(files, "SPARSE_ENCODING", query, DOCUMENTS, encoded)
            body = {
                "size": 10,
                "query": {"neural_sparse": {"embedding": {"query_text": query, "model_id": model["model_id"]}}},
            }
            hits = opensearch.search(index=index, body=body)["hits"]["hits"]
            assert [h["_score"] for h in hits] == pytest.approx([score for _, score in expected], rel=1e-4)
            scores = dict(expected)
            assert all(h["_score"] == pytest.approx(scores.get(h["_id"], -1), rel=1e-4) for h in hits)
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
        opensearch.ingest.delete_pipeline(id=pipeline, ignore=[404])
