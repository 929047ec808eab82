"""bench on OpenSearch: the same rankings and metrics as the embedded engine, failures reported."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ko_sparse.bench.opensearch_systems import BulkIndexError, OpenSearchBM25, OpenSearchSparse, bulk_index
from ko_sparse.bench.runner import run_benchmark
from ko_sparse.bench.systems import EmbeddedBM25, EmbeddedSparse
from ko_sparse.cli.main import cli
from tests.test_bench import SMALL


@pytest.fixture
def model(trained_tiny_model):
    from ko_sparse.model.doc_only import load_model

    return load_model(trained_tiny_model)


def test_sparse_rankings_and_metrics_match_the_embedded_engine(opensearch, model):
    embedded = run_benchmark(SMALL, [EmbeddedSparse(model, "tiny", 64)], hybrid=False)[0]
    system = OpenSearchSparse(opensearch, "ko-sparse-test-bench-sparse", EmbeddedSparse(model, "tiny", 64))
    try:
        cluster = run_benchmark(SMALL, [system], hybrid=False)[0]
    finally:
        system.target.delete()
    for qid in SMALL.queries:
        ours, theirs = embedded.run[qid], cluster.run[qid]
        assert list(theirs)[:10] == list(ours)[:10] or sorted(theirs.values(), reverse=True) == pytest.approx(
            sorted(ours.values(), reverse=True), rel=5e-3
        )  # only near-ties may swap (9-bit storage)
        for doc_id, score in theirs.items():
            assert score == pytest.approx(ours[doc_id], rel=5e-3)
    assert cluster.metrics == pytest.approx(embedded.metrics, abs=1e-9)


def test_bm25_on_the_cluster_finds_the_same_relevant_documents(opensearch):
    embedded = run_benchmark(SMALL, [EmbeddedBM25()], hybrid=False)[0]
    system = OpenSearchBM25(opensearch, "ko-sparse-test-bench-bm25")
    try:
        cluster = run_benchmark(SMALL, [system], hybrid=False)[0]
    finally:
        system.target.delete()
    assert "whitespace over kiwipiepy" in system.analyzer  # no analysis-nori for OpenSearch 3.6 on Maven
    assert cluster.metrics["recall@10"] == embedded.metrics["recall@10"] == pytest.approx(1.0)
    for qid in SMALL.queries:
        assert next(iter(cluster.run[qid])) == next(iter(embedded.run[qid]))


def test_failed_documents_are_reported_not_dropped(opensearch):
    index = "ko-sparse-test-bench-bulk"
    opensearch.indices.create(index=index, body={"mappings": {"properties": {"embedding": {"type": "rank_features"}}}})
    try:
        documents = [("good", {"embedding": {"당뇨병": 1.5}}), ("bad", {"embedding": {"당뇨병": "많이"}})]
        with pytest.raises(BulkIndexError, match=r"1 of 2 documents failed to index into .*bad: "):
            bulk_index(opensearch, index, documents, 2)
        assert opensearch.count(index=index)["count"] == 1
    finally:
        opensearch.indices.delete(index=index)


def test_model_id_path_encodes_on_the_cluster_like_python(opensearch, ml, model, trained_tiny_model, tmp_path):
    from ko_sparse.export.package import package_model
    from ko_sparse.opensearch.preflight import cluster_facts
    from ko_sparse.workflows.register import Registrar

    manifest, _ = package_model(trained_tiny_model, tmp_path, max_length=64, name="ko-sparse-test-bench-model")
    registrar = Registrar(opensearch, progress=False)
    registered = registrar.register(
        tmp_path, manifest.artifacts[0], registrar.model_group("ko-sparse-test-bench"), True
    )
    registrar.deploy(registered, cluster_facts(opensearch, "the test node"))
    embedded = run_benchmark(SMALL, [EmbeddedSparse(model, "tiny", 64)], hybrid=False)[0]
    system = OpenSearchSparse(
        opensearch, "ko-sparse-test-bench-model-id", EmbeddedSparse(model, "tiny", 64), model_id=registered.model_id
    )
    try:
        cluster = run_benchmark(SMALL, [system], hybrid=False)[0]
    finally:
        system.target.delete()
        ml.remove(registered.model_id)
    assert cluster.index.details["encoded_by"].startswith("ingest pipeline")
    for qid in SMALL.queries:
        for doc_id, score in cluster.run[qid].items():
            assert score == pytest.approx(embedded.run[qid][doc_id], rel=5e-3)
    assert cluster.metrics == pytest.approx(embedded.metrics, abs=1e-9)


def test_bench_command_on_every_profile(cluster, trained_tiny_model, tmp_path):
    """`ko-sparse bench --engine opensearch` with the profile's --host/--user/--ca-certs (password from the
    environment): the same metrics as the embedded engine, and no credentials in results.json."""
    folder = tmp_path / "small"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in SMALL.corpus.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in SMALL.queries.items())
    )
    rows = [f"{qid}\t{doc}\t{grade}" for qid, docs in SMALL.qrels.items() for doc, grade in docs.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    runs = {}
    for engine in ("embedded", "opensearch"):
        output = tmp_path / engine
        arguments = ["bench", "--index", str(folder), "--model", str(trained_tiny_model), "--systems", "bm25,sparse"]
        arguments += ["--engine", engine, "--max-length", "64", "--output", str(output)]
        result = CliRunner().invoke(cli, [*arguments, *cluster.options()], env=cluster.env())
        assert result.exit_code == 0, result.output
        runs[engine] = json.loads((output / "results.json").read_text())
    settings = runs["opensearch"]["settings"]
    assert settings["host"] == cluster.url
    assert cluster.password is None or cluster.password not in json.dumps(runs["opensearch"])
    for ours, theirs in zip(runs["embedded"]["systems"], runs["opensearch"]["systems"], strict=True):
        assert theirs["name"] == ours["name"]
        assert theirs["metrics"] == pytest.approx(ours["metrics"], abs=1e-9)


def test_cluster_side_hybrid_fuses_like_the_client_side_rrf(opensearch, model):
    from ko_sparse.bench.opensearch_systems import OpenSearchHybrid

    bm25 = OpenSearchBM25(opensearch, "ko-sparse-test-bench-hybrid-bm25")
    sparse = OpenSearchSparse(
        opensearch, "ko-sparse-test-bench-hybrid-sparse", EmbeddedSparse(model, "tiny", 64), morphemes=bm25.field
    )
    bm25.target.delete()  # what an interrupted run left
    sparse.target.delete()
    try:
        results = run_benchmark(SMALL, [bm25, sparse, OpenSearchHybrid(sparse)], hybrid=True)
    finally:
        bm25.target.delete()
        sparse.target.delete()
    by_name = {result.name: result for result in results}
    client_side, cluster_side = by_name["hybrid[tiny]"], by_name["hybrid-cluster[tiny]"]
    for qid in SMALL.queries:
        assert cluster_side.run[qid] == pytest.approx(client_side.run[qid], rel=1e-5)  # 1/(60 + rank), summed
    assert cluster_side.metrics == pytest.approx(client_side.metrics, abs=1e-9)
    assert cluster_side.matches["q1"]  # the tokens each side matched, for the HTML report
