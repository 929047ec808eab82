"""bench --suite on the node: each set indexed and searched on the cluster, a failed set reported, and the
indices it created gone afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from opensearchpy import OpenSearch

from ko_sparse.cli.main import cli
from tests.test_suite import BY_NAME, hub_cache, write_beir_set  # noqa: F401 (hub_cache: a fixture)


def test_suite_runs_on_the_cluster_like_the_embedded_engine(
    hub_cache: Path,  # noqa: F811
    opensearch_url: str,
    opensearch: OpenSearch,
    tmp_path: Path,
):
    write_beir_set(hub_cache, BY_NAME["Ko-StrategyQA"])
    write_beir_set(hub_cache, BY_NAME["AutoRAGRetrieval"], queries=False)
    reports = {}
    for engine in ("embedded", "opensearch"):
        arguments = ["bench", "--suite", "ko-retrieval:Ko-StrategyQA,AutoRAGRetrieval", "--systems", "bm25"]
        arguments += ["--engine", engine, "--host", opensearch_url, "--output", str(tmp_path / engine)]
        result = CliRunner().invoke(cli, arguments)
        assert result.exit_code == 0, result.output
        reports[engine] = json.loads((tmp_path / engine / "suite.json").read_text(encoding="utf-8"))
    ran, failed = reports["opensearch"]["sets"]
    assert failed["error"] and "config 'queries'" in failed["error"]
    assert reports["opensearch"]["settings"]["host"] == opensearch_url
    embedded = reports["embedded"]["sets"][0]["systems"][0]["metrics"]
    assert ran["systems"][0]["metrics"] == pytest.approx(embedded, abs=1e-9)
    assert not opensearch.indices.get(index="ko-sparse-bench-ko-strategyqa-*", allow_no_indices=True)
