"""A live OpenSearch node for the integration tests: the one at KO_SPARSE_OPENSEARCH_URL, or one
started with opensearch/local.sh (and stopped again if this session started it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from ko_sparse.opensearch.client import connect
from ko_sparse.opensearch.ml_commons import ML, MLCommons
from ko_sparse.opensearch.register import DEPLOYED_STATES

LOCAL_NODE = Path(__file__).resolve().parents[2] / "opensearch" / "local.sh"
URL_ENV = "KO_SPARSE_OPENSEARCH_URL"
OWN_GROUPS = ("ko-sparse-test", "ko-sparse-benchmarks")  # model groups only tests and benchmarks create


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.integration)


def local_node(command: str, *options: str, **env: str) -> subprocess.CompletedProcess:
    """``opensearch/local.sh COMMAND [OPTIONS]`` with extra environment variables."""
    return subprocess.run(
        [str(LOCAL_NODE), command, *options], capture_output=True, text=True, env={**os.environ, **env}, timeout=900
    )


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    was_running = local_node("status").returncode == 0
    started = local_node("start")
    if started.returncode != 0:
        pytest.fail(f"could not start the local OpenSearch node:\n{started.stderr}", pytrace=False)
    yield "http://127.0.0.1:9200"
    if not was_running:
        local_node("stop")


@pytest.fixture(scope="session")
def opensearch(opensearch_url: str) -> OpenSearch:
    return connect(opensearch_url)


@pytest.fixture(scope="session")
def ml(opensearch: OpenSearch) -> MLCommons:
    ml = MLCommons(opensearch)
    undeploy_leftovers(ml)
    return ml


def undeploy_leftovers(ml: MLCommons) -> None:
    """Undeploy models an interrupted test or benchmark run left deployed (a node holds at most 10)."""
    groups = ml.request("POST", f"{ML}/model_groups/_search", {"size": 1000, "query": {"match_all": {}}})
    own = [hit["_id"] for hit in groups["hits"]["hits"] if hit["_source"]["name"].startswith(OWN_GROUPS)]
    if not own:
        return
    deployed = {"terms": {"model_state": list(DEPLOYED_STATES)}}
    query = {"bool": {"filter": [{"terms": {"model_group_id": own}}, deployed]}}
    for hit in ml.request("POST", f"{ML}/models/_search", {"size": 1000, "query": query})["hits"]["hits"]:
        ml.undeploy(hit["_id"])


@pytest.fixture(scope="session")
def trained_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for a few steps on the built-in paraKQC triplets (its best/ folder)."""
    from ko_sparse.train.config import load_config
    from ko_sparse.train.trainer import SpladeTrainer

    output = tmp_path_factory.mktemp("trained")
    config = load_config(
        None,
        [
            "model.base_model=tiny:32x1",
            "model.max_length=32",
            "data.train=builtin:parakqc",
            "training.batch_size=8",
            "training.gradient_accumulation_steps=1",
            "training.max_steps=30",
            "training.learning_rate=2e-3",
            "training.save_steps=1000",
            "eval.every_steps=30",
            "eval.num_distractors=100",
            "eval.max_anchors=50",
            "loss.lambda_contrastive=1.0",
            f"output_dir={output}",
        ],
    )
    SpladeTrainer(config).train()
    return output / "best"
