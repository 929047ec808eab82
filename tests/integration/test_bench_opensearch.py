"""bench on OpenSearch: the same rankings and metrics as the embedded engine, failures reported."""

from __future__ import annotations

import json
import uuid

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


def beir_folder(folder, corpus: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]]):
    """A BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) for ``bench --index``."""
    (folder / "qrels").mkdir(parents=True)
    for name, rows in (("corpus", corpus), ("queries", queries)):
        lines = (json.dumps({"_id": key, "text": text}, ensure_ascii=False) + "\n" for key, text in rows.items())
        (folder / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")
    rows = [f"{qid}\t{doc}\t{grade}" for qid, docs in qrels.items() for doc, grade in docs.items() if qid in queries]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return folder


def bench_on_cluster(opensearch_url, model, folder, output, systems: str, *options: str) -> dict:
    arguments = ["bench", "--index", str(folder), "--engine", "opensearch", "--host", opensearch_url]
    arguments += ["--model", str(model), "--max-length", "64", "--systems", systems, "--output", str(output)]
    result = CliRunner().invoke(cli, [*arguments, *options])
    assert result.exit_code == 0, result.output
    return json.loads((output / "results.json").read_text())


def sparse_result(run: dict) -> dict:
    return next(system for system in run["systems"] if system["name"].startswith("sparse["))


def test_bench_method_seismic_matches_exact_and_records_the_method(opensearch, opensearch_url, saved_model, tmp_path):
    """allganize-ko's 300 passages and its first 40 queries (all 300 take minutes per run on 2 busy cores) through
    a sparse_vector index: below approximate_threshold (1,000 by default) its one segment is searched exactly,
    so nDCG@10 equals rank_features' up to the byte quantisation of the weights (a near-tie may swap: 0.01);
    forced approximate (approximate_threshold=1, k=100, heap_factor=10) it stays within 0.05. The hybrids still
    run, and results.json records the method and its parameters."""
    from ko_sparse.data.retrieval_sets import load_set

    dataset = load_set("allganize-ko")
    queries = dict(list(dataset.queries.items())[:40])
    folder = beir_folder(tmp_path / f"seismic-{uuid.uuid4().hex[:8]}", dataset.corpus, queries, dataset.qrels)
    exact = bench_on_cluster(opensearch_url, saved_model, folder, tmp_path / "exact", "sparse")
    seismic = bench_on_cluster(
        opensearch_url, saved_model, folder, tmp_path / "seismic", "bm25,sparse,hybrid", "--method", "seismic"
    )
    approximate = bench_on_cluster(
        opensearch_url, saved_model, folder, tmp_path / "approximate", "sparse", "--method", "seismic",
        "--seismic", "approximate_threshold=1", "--method-parameter", "k=100", "--method-parameter", "heap_factor=10",
    )  # fmt: skip
    assert exact["settings"]["method"] == "exact" and exact["settings"]["method_parameters"] is None
    assert seismic["settings"]["method"] == "seismic" and seismic["settings"]["seismic"] == {}
    assert approximate["settings"]["seismic"] == {"approximate_threshold": 1}
    assert approximate["settings"]["method_parameters"] == {"k": 100, "heap_factor": 10.0}
    assert {system["name"].split("[")[0] for system in seismic["systems"]} == {
        "bm25",
        "sparse",
        "hybrid",
        "hybrid-cluster",
    }
    assert "method" not in sparse_result(exact)["index"]["details"]
    thresholds = [
        sparse_result(run)["index"]["details"]["method_parameters"]["approximate_threshold"]
        for run in (seismic, approximate)
    ]
    assert thresholds == [1_000, 1]
    ndcg = {
        name: sparse_result(run)["metrics"]["ndcg@10"]
        for name, run in (("exact", exact), ("seismic", seismic), ("approximate", approximate))
    }
    assert ndcg["seismic"] == pytest.approx(ndcg["exact"], abs=0.01), ndcg
    assert ndcg["approximate"] == pytest.approx(ndcg["exact"], abs=0.05), ndcg
    print(f"nDCG@10 on allganize-ko (40 queries): {ndcg}")
