"""Live OpenSearch for the integration tests.

The default node: the one at KO_SPARSE_OPENSEARCH_URL, or one started with opensearch/local.sh (and
stopped again if this session started it). The ``secure`` and ``ml-cluster`` profiles: tests taking the
``cluster`` fixture run once per profile that is up (``opensearch/local.sh start --profile NAME``), or that
KO_SPARSE_TEST_PROFILES names (then started here, and stopped after); the others are skipped.
Select one profile's tests with ``-m secure`` or ``-m ml_cluster``."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opensearchpy import ConflictError, OpenSearch

from ko_sparse.data.jsonl import read_jsonl
from ko_sparse.opensearch.client import ClusterConnection, connect
from ko_sparse.opensearch.ml_commons import DEPLOYED_STATES, MLCommons
from ko_sparse.resources import RETRIEVAL_DIR

LOCAL_NODE = Path(__file__).resolve().parents[2] / "opensearch" / "local.sh"
MIRACL = RETRIEVAL_DIR / "miracl-ko-dev-judged"
DOCUMENTS = {r["docid"]: f"{r['title']} {r['text']}" for r in list(read_jsonl(MIRACL / "corpus.jsonl"))[:120]}
QUERIES = [r["text"] for r in list(read_jsonl(MIRACL / "queries_clean.jsonl"))[:6]]
URL_ENV = "KO_SPARSE_OPENSEARCH_URL"
PROFILES_ENV = "KO_SPARSE_TEST_PROFILES"
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


@dataclass(frozen=True)
class Cluster:
    """A running profile as a user would address it: ``--host``, ``--user``, the password, ``--ca-certs``."""

    profile: str
    url: str
    user: str | None = None
    password: str | None = None
    ca_certs: str | None = None

    def options(self) -> list[str]:
        """Command-line connection options (the password goes through the environment)."""
        options = ["--host", self.url]
        if self.user:
            options += ["--user", self.user]
        if self.ca_certs:
            options += ["--ca-certs", self.ca_certs]
        return options

    def env(self) -> dict[str, str]:
        return {"OPENSEARCH_PASSWORD": self.password} if self.password else {}

    def client(self) -> OpenSearch:
        return ClusterConnection(self.url, self.user, self.password, self.ca_certs).client()

    def as_user(self, user: str) -> Cluster:
        return profile_cluster(self.profile, user)


def profile_cluster(profile: str, user: str | None = None) -> Cluster:
    """What ``opensearch/local.sh env --profile PROFILE [--user USER]`` exports."""
    printed = local_node("env", "--profile", profile, *(["--user", user] if user else []))
    assert printed.returncode == 0, printed.stderr
    exports = dict(item.split("=", 1) for item in shlex.split(printed.stdout.split(";")[0])[1:])
    return Cluster(
        profile,
        exports[URL_ENV],
        exports.get("OPENSEARCH_USER"),
        exports.get("OPENSEARCH_PASSWORD"),
        exports.get("OPENSEARCH_CA_CERTS"),
    )


@pytest.fixture(
    scope="session",
    params=[
        "default",
        pytest.param("secure", marks=pytest.mark.secure),
        pytest.param("ml-cluster", marks=pytest.mark.ml_cluster),
    ],
)
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Each running profile in turn (see the module docstring); its leftover models are undeployed first."""
    profile = request.param
    started = False
    if profile == "default":
        found = Cluster("default", request.getfixturevalue("opensearch_url"))
    else:
        if local_node("status", "--profile", profile).returncode != 0:
            if profile not in os.environ.get(PROFILES_ENV, "").split():
                pytest.skip(f"profile {profile} is not running: opensearch/local.sh start --profile {profile}")
            result = local_node("start", "--profile", profile)
            if result.returncode != 0:
                pytest.fail(f"could not start the {profile} profile:\n{result.stderr}", pytrace=False)
            started = True
        found = profile_cluster(profile)
    undeploy_leftovers(MLCommons(found.client()))
    yield found
    if started:
        local_node("stop", "--profile", profile)


@pytest.fixture(scope="session")
def ml_cluster() -> Cluster:
    """The ml-cluster profile alone (its shape, losing a node), skipped unless it runs."""
    if local_node("status", "--profile", "ml-cluster").returncode != 0:
        pytest.skip("profile ml-cluster is not running: opensearch/local.sh start --profile ml-cluster")
    return profile_cluster("ml-cluster")


@pytest.fixture(scope="session")
def opensearch(opensearch_url: str) -> OpenSearch:
    return connect(opensearch_url)


@pytest.fixture(scope="session")
def ml(opensearch: OpenSearch) -> MLCommons:
    ml = MLCommons(opensearch)
    undeploy_leftovers(ml)
    return ml


def delete_model_group(ml: MLCommons, name: str) -> None:
    """Undeploy and delete every model of the group called ``name``, then the group (a node holds at most 10)."""
    groups = ml.api.search_model_group(body={"query": {"term": {"name.keyword": name}}})
    for hit in groups["hits"]["hits"]:
        query = {"bool": {"filter": [{"term": {"model_group_id": hit["_id"]}}]}}
        query["bool"]["must_not"] = [{"exists": {"field": "chunk_number"}}]
        for model in ml.api.search_models(body={"size": 100, "query": query})["hits"]["hits"]:
            ml.remove(model["_id"])
        for attempt in range(10):  # model deletions reach the group's version count with a delay
            try:
                ml.api.delete_model_group(model_group_id=hit["_id"])
                break
            except ConflictError:
                if attempt == 9:
                    raise
                time.sleep(1)


@pytest.fixture
def group(ml: MLCommons) -> Iterator[str]:
    """A fresh model group on the default node for each test, so no test reuses what another uploaded (every
    test passes alone and in any order); its models are undeployed and deleted afterwards."""
    name = f"ko-sparse-test-{uuid.uuid4().hex[:8]}"
    yield name
    delete_model_group(ml, name)


@pytest.fixture
def profile_group(cluster: Cluster) -> Iterator[str]:
    """The same on each running profile."""
    name = f"ko-sparse-test-{cluster.profile}-{uuid.uuid4().hex[:8]}"
    yield name
    delete_model_group(MLCommons(cluster.client()), name)


def undeploy_leftovers(ml: MLCommons) -> None:
    """Undeploy models an interrupted test or benchmark run left deployed (a node holds at most 10)."""
    groups = ml.api.search_model_group(body={"size": 1000, "query": {"match_all": {}}})
    own = [hit["_id"] for hit in groups["hits"]["hits"] if hit["_source"]["name"].startswith(OWN_GROUPS)]
    if not own:
        return
    deployed = {"terms": {"model_state": list(DEPLOYED_STATES)}}
    query = {"bool": {"filter": [{"terms": {"model_group_id": own}}, deployed]}}
    for hit in ml.api.search_models(body={"size": 1000, "query": query})["hits"]["hits"]:
        ml.api.undeploy_model(model_id=hit["_id"])


@pytest.fixture(scope="session")
def trained_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for a few steps on the built-in paraKQC triplets (its best/ folder)."""
    from ko_sparse.train.config import load_config
    from ko_sparse.train.trainer import Training

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
    Training(config).train()
    return output / "best"


@pytest.fixture(scope="session")
def packages(trained_tiny_model, tmp_path_factory) -> Path:
    """The tiny model packaged bi (folder bi/) and doc-only with an IDF over DOCUMENTS (folder doc/)."""
    from ko_sparse.export.package import package_model

    folder = tmp_path_factory.mktemp("packages")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in DOCUMENTS.values()))
    # model-side pruning keeps the barely trained model's queries under Lucene's 1,024-clause limit
    package_model(trained_tiny_model, folder / "bi", max_length=128, prune_ratio=0.3, name="ko-sparse-it-bi")
    package_model(
        trained_tiny_model,
        folder / "doc",
        mode="doc-only",
        max_length=128,
        prune_ratio=0.3,
        idf_corpus=corpus,
        name="ko-sparse-it-doc",
    )
    return folder
