"""The ml-cluster profile's shape: three cluster-manager-eligible data nodes and one dedicated ML node, and
``ko-sparse index`` into it gives three primaries and three replicas, each pair on two data nodes."""

from __future__ import annotations

import pytest

from tests.integration.conftest import local_node
from tests.integration.index_helpers import index_arguments, korean_passages, run_index, write_corpus

pytestmark = pytest.mark.ml_cluster
DATA_NODES = {"ko-sparse-data-1", "ko-sparse-data-2", "ko-sparse-data-3"}
ML_NODE = "ko-sparse-ml"


def test_four_nodes_three_data_one_ml_as_local_sh_lists_them(ml_cluster):
    client = ml_cluster.client()
    nodes = {
        node["name"]: node for node in client.nodes.info(filter_path="nodes.*.name,nodes.*.roles")["nodes"].values()
    }
    assert set(nodes) == DATA_NODES | {ML_NODE}
    for name in DATA_NODES:
        assert sorted(nodes[name]["roles"]) == ["cluster_manager", "data", "ingest"], name
    assert nodes[ML_NODE]["roles"] == ["ml"]
    manager = client.cat.cluster_manager(format="json")[0]["node"]
    assert manager in DATA_NODES

    listed = local_node("nodes", "--profile", "ml-cluster")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert [row[0] for row in rows] == ["ko-sparse-data-1", ML_NODE, "ko-sparse-data-2", "ko-sparse-data-3"]
    assert [row[2] for row in rows] == [f"http://127.0.0.1:{port}" for port in (9260, 9261, 9262, 9263)]
    assert all(row[3].isdigit() for row in rows)  # every node runs
    assert rows[0][2] == ml_cluster.url


def test_models_run_only_on_the_ml_node(ml_cluster):
    settings = ml_cluster.client().cluster.get_settings(include_defaults=True, flat_settings=True)
    found = {**settings["defaults"], **settings["persistent"], **settings["transient"]}
    assert found["plugins.ml_commons.only_run_on_ml_node"] == "true"


def test_an_index_gets_three_primaries_and_three_replicas_on_distinct_data_nodes(ml_cluster, saved_model, tmp_path):
    index, client = "ko-sparse-test-cluster-shape", ml_cluster.client()
    corpus = write_corpus(tmp_path / "docs.jsonl", korean_passages(30))
    client.indices.delete(index=index, ignore_unavailable=True)
    try:
        arguments = index_arguments(ml_cluster.url, index, corpus, tmp_path / "out", "--model", str(saved_model))
        summary = run_index([*arguments, "--max-length", "32"])
        assert summary["documents_in_index"] == 30
        assert (
            client.cluster.health(index=index, wait_for_status="green", timeout="60s", request_timeout=90)["status"]
            == "green"
        )
        shards = client.cat.shards(index=index, format="json", h="shard,prirep,state,node")
        assert sorted((row["shard"], row["prirep"]) for row in shards) == [
            (shard, kind) for shard in "012" for kind in "pr"
        ]
        assert {row["state"] for row in shards} == {"STARTED"}
        for shard in "012":
            holders = [row["node"] for row in shards if row["shard"] == shard]
            assert len(set(holders)) == 2, shards  # a primary and its replica never share a node
        assert {row["node"] for row in shards} == DATA_NODES  # none on the ML node, every data node used
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
