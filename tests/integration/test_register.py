"""ko-sparse package + register against the live node: parity with Python, ingest, neural_sparse
top-10 equal to the Python dot product, idempotent re-registration, doc-only mode, settings."""

from __future__ import annotations

import shutil
import socket

from click.testing import CliRunner
from opensearchpy import helpers

from ko_sparse.cli.main import cli
from tests.integration.conftest import Cluster
from tests.integration.parity import assert_queries_rank_like_python, cleaned_up, invoke, register


def assert_served_by_ml_nodes_if_any(cluster: Cluster, model: dict) -> None:
    """``_plugins/_ml/profile/models`` shows the model on the ML nodes where the cluster has them."""
    client = cluster.client()
    nodes = client.nodes.info(filter_path="nodes.*.name,nodes.*.roles")["nodes"]
    ml_nodes = {node_id for node_id, node in nodes.items() if "ml" in node["roles"]}
    profile = client.transport.perform_request("GET", f"/_plugins/_ml/profile/models/{model['model_id']}")
    workers = {
        worker
        for node in profile["nodes"].values()
        for model_id, state in node.get("models", {}).items()
        if model_id == model["model_id"]
        for worker in state.get("worker_nodes", [])
    }
    assert workers
    assert model["deployed_on"] == sorted(nodes[worker]["name"] for worker in workers)
    if ml_nodes:
        assert workers <= ml_nodes


def test_bi_encoder_registers_deploys_and_ranks_like_python(cluster, packages, profile_group):
    index, pipeline = f"{profile_group}-bi", f"{profile_group}-bi-pipeline"
    first = register(cluster, packages / "bi", "--model-group", profile_group, "--pipeline", pipeline, "--index", index)
    (model,) = first["models"]
    assert model["function_name"] == "SPARSE_ENCODING" and not model["reused"]
    assert model["max_relative_difference"] <= 1e-3
    assert_served_by_ml_nodes_if_any(cluster, model)
    assert first["query"]["query"]["neural_sparse"]["embedding"]["model_id"] == model["model_id"]
    client = cluster.client()
    with cleaned_up(client, index, pipeline):
        assert_queries_rank_like_python(client, index, packages / "bi", "SPARSE_ENCODING", model["model_id"])
        again = register(cluster, packages / "bi", "--model-group", profile_group)
        assert again["models"][0]["model_id"] == model["model_id"] and again["models"][0]["reused"]
        assert again["model_group_id"] == first["model_group_id"]


def test_doc_only_queries_through_the_tokenizer_model(cluster, packages, profile_group):
    index, pipeline = f"{profile_group}-doc", f"{profile_group}-doc-pipeline"
    result = register(
        cluster, packages / "doc", "--model-group", profile_group, "--pipeline", pipeline, "--index", index
    )
    ids = {m["function_name"]: m["model_id"] for m in result["models"]}
    assert set(ids) == {"SPARSE_ENCODING", "SPARSE_TOKENIZE"}
    for model in result["models"]:
        assert_served_by_ml_nodes_if_any(cluster, model)
    assert result["query"]["query"]["neural_sparse"]["embedding"]["model_id"] == ids["SPARSE_TOKENIZE"]
    client = cluster.client()
    with cleaned_up(client, index, pipeline):
        assert_queries_rank_like_python(client, index, packages / "doc", "SPARSE_TOKENIZE", ids["SPARSE_TOKENIZE"])


def test_settings_are_checked_and_set_only_when_asked(opensearch_url, opensearch, packages, group):
    setting = "plugins.ml_commons.allow_registering_model_via_local_file"
    opensearch.cluster.put_settings(body={"persistent": {setting: False}})
    try:
        blocked = invoke(
            opensearch_url, "register", "--model", str(packages / "bi"), "--model-group", group, "--no-deploy"
        )
        assert blocked.exit_code == 1
        assert f"--configure-cluster would change (persistent): {setting}: false -> true" in blocked.output
        configured = register(
            opensearch_url, packages / "bi", "--model-group", group, "--no-deploy", "--configure-cluster"
        )
        assert configured["changed_settings"] == {setting: "true"} and not configured["models"][0]["reused"]
        flat = opensearch.cluster.get_settings(flat_settings=True)["persistent"]
        assert flat[setting] == "true"
    finally:
        opensearch.cluster.put_settings(body={"persistent": {setting: None}})


def test_configure_cluster_never_lets_models_onto_data_nodes_unless_asked(opensearch_url, opensearch, packages, group):
    """A cluster without ML nodes and only_run_on_ml_node true (ML-Commons' default) cannot deploy: say so,
    and change only_run_on_ml_node only with --allow-models-on-data-nodes."""
    setting = "plugins.ml_commons.only_run_on_ml_node"
    opensearch.cluster.put_settings(body={"persistent": {setting: True}})
    model = ["--model", str(packages / "bi"), "--model-group", group]
    try:
        for extra in ([], ["--configure-cluster"]):
            refused = invoke(opensearch_url, "register", *model, *extra)
            assert refused.exit_code == 1, refused.output
            assert "has no ML node (a node with the ml role) and plugins.ml_commons.only_run_on_ml_node is true" in (
                refused.output
            )
            assert "--configure-cluster --allow-models-on-data-nodes" in refused.output
            assert opensearch.cluster.get_settings(flat_settings=True)["persistent"][setting] == "true"
        allowed = register(
            opensearch_url, packages / "bi", *model[2:], "--configure-cluster", "--allow-models-on-data-nodes"
        )
        assert allowed["changed_settings"] == {setting: "false"}
        assert allowed["models"][0]["deployed_on"] == ["ko-sparse-node"]
    finally:
        opensearch.cluster.put_settings(body={"persistent": {setting: None}})


def models_in_group(opensearch, name: str) -> list[str]:
    groups = opensearch.plugins.ml.search_model_group(body={"query": {"term": {"name.keyword": name}}})
    query = {"bool": {"filter": [{"terms": {"model_group_id": [hit["_id"] for hit in groups["hits"]["hits"]]}}]}}
    query["bool"]["must_not"] = [{"exists": {"field": "chunk_number"}}]
    return [hit["_id"] for hit in opensearch.plugins.ml.search_models(body={"query": query})["hits"]["hits"]]


def test_a_failed_run_undoes_its_upload_settings_and_pipeline(opensearch_url, opensearch, packages, group):
    """The cluster refuses the index name after the upload, the setting and the pipeline: all are undone."""
    setting = "plugins.ml_commons.allow_registering_model_via_local_file"
    pipeline = f"{group}-undone"
    opensearch.cluster.put_settings(body={"persistent": {setting: False}})
    try:
        failed = invoke(
            opensearch_url,
            *("register", "--model", str(packages / "bi"), "--model-group", group),  # --index needs a deploy
            *("--configure-cluster", "--pipeline", pipeline, "--index", f"Not-Lowercase-{group}"),
        )
        assert failed.exit_code == 1, failed.output
        assert "invalid_index_name_exception" in failed.output
        assert opensearch.cluster.get_settings(flat_settings=True)["persistent"][setting] == "false"
        assert models_in_group(opensearch, group) == []
        assert not opensearch.ingest.get_pipeline(id=pipeline, ignore=404).get(pipeline)
        assert "undone: uploaded model" in failed.output and f"undone: created pipeline {pipeline}" in (failed.output)
    finally:
        opensearch.cluster.put_settings(body={"persistent": {setting: None}})
        opensearch.ingest.delete_pipeline(id=pipeline, ignore=404)


def test_a_rerun_changes_nothing_it_does_not_need_and_keeps_what_was_there(opensearch_url, opensearch, packages, group):
    """Reusing a model needs no local-file upload; a failed re-run keeps the reused model and puts the
    pipeline it replaced back."""
    setting = "plugins.ml_commons.allow_registering_model_via_local_file"
    pipeline = f"{group}-kept"
    (model,) = register(opensearch_url, packages / "bi", "--model-group", group, "--no-deploy")["models"]
    previous = {"description": "a user's own pipeline", "processors": [{"set": {"field": "f", "value": "v"}}]}
    opensearch.ingest.put_pipeline(id=pipeline, body=previous)
    opensearch.cluster.put_settings(body={"persistent": {setting: False}})
    try:
        again = register(opensearch_url, packages / "bi", "--model-group", group, "--no-deploy")
        assert again["changed_settings"] == {} and again["models"][0]["reused"]
        failed = invoke(
            opensearch_url,
            *("register", "--model", str(packages / "bi"), "--model-group", group),  # deploys the reused model
            *("--pipeline", pipeline, "--index", f"Not-Lowercase-{group}"),
        )
        assert failed.exit_code == 1, failed.output
        assert models_in_group(opensearch, group) == [model["model_id"]]
        assert opensearch.ingest.get_pipeline(id=pipeline)[pipeline] == previous
        assert opensearch.plugins.ml.get_model(model_id=model["model_id"])["model_state"] != "DEPLOYED"  # undone
    finally:
        opensearch.cluster.put_settings(body={"persistent": {setting: None}})
        opensearch.ingest.delete_pipeline(id=pipeline, ignore=404)


def test_search_pipeline_and_index_settings(opensearch_url, opensearch, packages, group):
    index, pipeline, search_pipeline = f"{group}-two-phase", f"{group}-tp-ingest", f"{group}-two-phase"
    result = register(  # deployed: the test queries through the model
        opensearch_url,
        packages / "bi",
        "--model-group",
        group,
        "--pipeline",
        pipeline,
        "--index",
        index,
        "--search-pipeline",
        search_pipeline,
        "--prune-type",
        "max_ratio",
        "--ingest-batch-size",
        "4",
    )
    model_id = result["models"][0]["model_id"]
    try:
        processor = opensearch.ingest.get_pipeline(id=pipeline)[pipeline]["processors"][0]["sparse_encoding"]
        assert processor == {
            "model_id": model_id,
            "field_map": {"text": "embedding"},
            "prune_type": "max_ratio",
            "prune_ratio": 0.1,
            "batch_size": 4,
        }
        assert ingested_vectors(opensearch, pipeline, group) == ingested_vectors(opensearch, pipeline, group, 1)
        settings = opensearch.indices.get_settings(index=index, flat_settings=True)[index]["settings"]
        assert settings["index.default_pipeline"] == pipeline
        assert settings["index.search.default_pipeline"] == search_pipeline
        two_phase = opensearch.search_pipeline.get(id=search_pipeline)
        assert "neural_sparse_two_phase_processor" in two_phase[search_pipeline]["request_processors"][0]
        opensearch.index(index=index, body={"text": "당뇨병 치료에 좋은 음식"}, id="1", refresh=True)
        hits = opensearch.search(
            index=index,
            body={"query": {"neural_sparse": {"embedding": {"query_text": "당뇨병 치료", "model_id": model_id}}}},
        )["hits"]["hits"]
        assert [hit["_id"] for hit in hits] == ["1"]
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
        opensearch.ingest.delete_pipeline(id=pipeline)
        opensearch.search_pipeline.delete(id=search_pipeline)


def ingested_vectors(opensearch, pipeline: str, name: str, batch_size: int | None = None) -> dict[str, dict]:
    """The vectors the pipeline (or a copy with ``batch_size``) writes for six texts of different lengths sent in
    one bulk request (so a batched processor encodes them in padded batches), rounded to 4 decimals."""
    texts = ["당뇨병", "당뇨병 치료에 좋은 음식", "서울", "서울에서 부산까지 기차로 가는 방법과 시간", "물", "혈압"]
    if batch_size is not None:
        body = opensearch.ingest.get_pipeline(id=pipeline)[pipeline]
        body["processors"][0]["sparse_encoding"]["batch_size"] = batch_size
        pipeline = f"{pipeline}-{batch_size}"
        opensearch.ingest.put_pipeline(id=pipeline, body=body)
    index = f"{name}-batch-{batch_size or 'own'}"
    try:
        mapping = {"properties": {"embedding": {"type": "rank_features"}}}
        opensearch.indices.create(index=index, body={"mappings": mapping})
        actions = [{"_index": index, "_id": str(i), "text": text} for i, text in enumerate(texts)]
        helpers.bulk(opensearch, actions, pipeline=pipeline, refresh=True)
        hits = opensearch.search(index=index, body={"size": len(texts)})["hits"]["hits"]
        return {hit["_id"]: {t: round(w, 4) for t, w in hit["_source"]["embedding"].items()} for hit in hits}
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
        if batch_size is not None:
            opensearch.ingest.delete_pipeline(id=pipeline, ignore=404)


def test_tampered_zip_is_refused(opensearch_url, packages, tmp_path, group):

    copy = tmp_path / "bi"
    shutil.copytree(packages / "bi", copy)
    zip_file = next(copy.glob("*.zip"))
    zip_file.write_bytes(zip_file.read_bytes()[:-10] + b"0123456789")
    result = CliRunner().invoke(
        cli, ["register", "--host", opensearch_url, "--model", str(copy), "--model-group", group]
    )
    assert result.exit_code == 1
    assert "does not match package.json (size or sha256 changed)" in result.output


def test_unreachable_host_is_a_clear_error(packages):

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(cli, ["register", "--host", f"127.0.0.1:{port}", "--model", str(packages / "bi")])
    assert result.exit_code == 1
    assert f"cannot reach http://127.0.0.1:{port}" in result.output and "opensearch/local.sh start" in result.output
