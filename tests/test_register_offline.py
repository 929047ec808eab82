"""register's parts that need no cluster: host parsing, retries, field maps, bodies, missing packages."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from opensearchpy import ConnectionError as OpenSearchConnectionError
from opensearchpy import TransportError

from ko_sparse.cli.main import cli
from ko_sparse.opensearch import retry as retry_module
from ko_sparse.opensearch.client import ClusterConnection, parse_host, resolve
from ko_sparse.opensearch.corpus_index import EMBEDDING, IndexMeta, MorphemeField, index_body
from ko_sparse.opensearch.pipelines import INGEST_BATCH_SIZE, ingest_pipeline, parse_field_map
from ko_sparse.opensearch.retry import with_backoff


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost:9200", ("localhost", 9200, False)),
        ("http://search.local", ("search.local", 9200, False)),
        ("https://search.example.com", ("search.example.com", 443, True)),
        ("https://10.0.0.5:9201", ("10.0.0.5", 9201, True)),
    ],
)
def test_parse_host(host, expected):
    assert parse_host(host) == expected


def test_bad_host_and_missing_password(monkeypatch):
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_host("ftp://x")
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_host("localhost:port")
    monkeypatch.delenv("OPENSEARCH_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="OPENSEARCH_PASSWORD"):
        resolve("localhost:9200", user="admin")


def test_credentials_in_the_host_are_refused_and_never_repeated():
    with pytest.raises(ValueError, match="must not contain credentials") as refused:
        parse_host("https://admin:s3cret-pw@search.example.com:9200")
    assert "s3cret-pw" not in str(refused.value) and "admin" not in str(refused.value)


def test_connection_resolves_the_environment_and_hides_the_password(monkeypatch, tmp_path):
    ca = tmp_path / "ca.pem"
    monkeypatch.setenv("KO_SPARSE_OPENSEARCH_URL", "https://search.example.com:9201")
    monkeypatch.setenv("OPENSEARCH_USER", "reader")
    monkeypatch.setenv("OPENSEARCH_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("OPENSEARCH_CA_CERTS", str(ca))
    connection = resolve()
    assert connection == ClusterConnection("https://search.example.com:9201", "reader", "s3cret-pw", str(ca))
    assert connection.url == "https://search.example.com:9201"
    assert "s3cret-pw" not in repr(connection)
    assert resolve("localhost:9200", user="admin").host == "localhost:9200"  # options win over the environment


def test_backoff_retries_passing_failures_only(monkeypatch):
    sleeps = []
    monkeypatch.setattr(retry_module.time, "sleep", sleeps.append)
    calls = iter([OpenSearchConnectionError("N/A", "reset", None), TransportError(503, "busy", {}), "ok"])

    def flaky():
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_backoff(flaky) == "ok"
    assert sleeps == [1.0, 2.0]
    with pytest.raises(TransportError):
        with_backoff(lambda: (_ for _ in ()).throw(TransportError(400, "bad request", {})))
    assert sleeps == [1.0, 2.0]


def test_field_map_and_bodies():
    assert parse_field_map("body:body_sparse") == ("body", "body_sparse")
    with pytest.raises(ValueError, match="TEXT_FIELD:EMBEDDING_FIELD"):
        parse_field_map("text")
    assert ingest_pipeline("m1", ("t", "e"))["processors"] == [
        {"sparse_encoding": {"model_id": "m1", "field_map": {"t": "e"}, "batch_size": INGEST_BATCH_SIZE}}
    ]
    assert ingest_pipeline("m1", ("t", "e"), batch_size=1)["processors"][0]["sparse_encoding"]["batch_size"] == 1
    with pytest.raises(ValueError, match="ingest batch size 0"):
        ingest_pipeline("m1", ("t", "e"), batch_size=0)
    assert ingest_pipeline("m1", ("t", "e"), "top_k", 50)["processors"][0]["sparse_encoding"]["prune_type"] == "top_k"
    index = index_body(IndexMeta("pipeline", "ml-commons:m1:abc", None), MorphemeField(False), "p", 1, "s")
    assert index["mappings"]["properties"][EMBEDDING] == {"type": "rank_features"}
    assert IndexMeta.from_mapping(index["mappings"]) == IndexMeta("pipeline", "ml-commons:m1:abc", None)
    assert index["settings"] == {"number_of_shards": 1, "default_pipeline": "p", "index.search.default_pipeline": "s"}


def test_register_without_package_names_the_fix(tmp_path):
    result = CliRunner().invoke(cli, ["register", "--host", "localhost:1", "--model", str(tmp_path)])
    assert result.exit_code == 1
    assert "no package.json" in result.output and "ko-sparse package" in result.output


def test_a_model_file_is_uploaded_in_chunks_read_from_disk(tmp_path):
    import hashlib

    from ko_sparse.opensearch.ml_commons import ModelArtifact

    data = bytes(range(256)) * 1000
    (tmp_path / "m.zip").write_bytes(data)
    on_disk = ModelArtifact(tmp_path / "m.zip", "m", "SPARSE_ENCODING")
    in_memory = ModelArtifact(data, "m", "SPARSE_ENCODING")
    assert on_disk.size == in_memory.size == len(data)
    assert on_disk.sha256 == in_memory.sha256 == hashlib.sha256(data).hexdigest()
    chunks = list(on_disk.chunks(size=100_000))
    assert [len(c) for c in chunks] == [100_000, 100_000, 56_000] and b"".join(chunks) == data
    assert on_disk.chunk_count(100_000) == 3


def test_backoff_waits_at_most_its_longest_delay(monkeypatch):
    sleeps = []
    monkeypatch.setattr(retry_module.time, "sleep", sleeps.append)
    with pytest.raises(TransportError):
        with_backoff(lambda: (_ for _ in ()).throw(TransportError(429, "busy", {})), attempts=8, max_delay=30.0)
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_full_heap_names_the_breaker_and_the_heap_settings():
    from ko_sparse.opensearch.diagnosis import explain

    connection = ClusterConnection("http://127.0.0.1:9210")
    reason = "[parent] Data too large, data for [<http_request>] would be [2101621952/1.9gb]"
    info = {"error": {"type": "circuit_breaking_exception", "reason": reason}, "status": 429}
    message = explain(connection, TransportError(429, "circuit_breaking_exception", info))
    assert "heap is full" in message and "1.9gb" in message
    assert "indices.breaker.total.limit" in message and "-Xmx" in message and "KO_SPARSE_OPENSEARCH_HEAP" in message
    assert explain(connection, TransportError(429, "busy", "busy")) == "http://127.0.0.1:9210 answered 429: busy"


@pytest.mark.parametrize(
    "pruning",
    [
        ["--prune-type", "top_k"],  # the old default ratio 0.1 is no whole number of tokens
        ["--prune-type", "top_k", "--prune-ratio", "64.5"],
        ["--prune-type", "alpha_mass", "--prune-ratio", "1.0"],
        ["--prune-type", "none", "--prune-ratio", "0.3"],
    ],
)
def test_pruning_the_node_would_refuse_is_a_usage_error_before_connecting(tmp_path, pruning):
    result = CliRunner().invoke(cli, ["register", "--host", "localhost:1", "--model", str(tmp_path), *pruning])
    assert result.exit_code == 2, result.output
    assert "--prune-ratio" in result.output


def test_top_k_counts_whole_tokens():
    from ko_sparse.model.pruning import Pruning

    assert Pruning("top_k", 64).label == "top_k=64"
    with pytest.raises(ValueError, match="whole number"):
        Pruning("top_k", 0.1)


def test_a_failed_run_is_undone_newest_first_even_on_ctrl_c():
    from ko_sparse.opensearch.undo import Undo

    report, undone = [], []

    def broken() -> None:
        raise RuntimeError("node gone")

    with pytest.raises(KeyboardInterrupt), Undo(report.append) as undo:
        undo.record("uploaded model m1", lambda: undone.append("m1"))
        undo.record("changed a setting", broken)
        undo.record("created pipeline p", lambda: undone.append("p"))
        raise KeyboardInterrupt
    assert undone == ["p", "m1"]
    assert report[1:] == [
        "undone: created pipeline p",
        "could not undo: changed a setting (node gone)",
        "undone: uploaded model m1",
    ]
    with Undo(report.append) as kept:
        kept.record("created pipeline q", lambda: undone.append("q"))
    assert undone == ["p", "m1"]  # a run that succeeds keeps what it made


class LostDeployAnswer:
    """A node whose answer to ``_deploy`` is lost (connection reset) after it started deploying."""

    def __init__(self) -> None:
        self.state = "REGISTERED"
        self.requests: list[tuple[str, str]] = []

    def perform_request(self, method, url, params=None, body=None, headers=None):
        self.requests.append((method, url))
        if url.endswith("/_deploy"):
            self.state = "DEPLOYING"
            raise OpenSearchConnectionError("N/A", "connection reset by peer", None)
        if method == "GET" and url == "/_plugins/_ml/models/m1":
            state, self.state = self.state, "DEPLOYED" if self.state == "DEPLOYING" else self.state
            return {"model_state": state}
        raise AssertionError(f"unexpected {method} {url}")


def test_a_deploy_whose_answer_was_lost_is_waited_for_not_sent_again(monkeypatch):
    from opensearchpy import OpenSearch

    from ko_sparse.opensearch.ml_commons import MLCommons

    monkeypatch.setattr(retry_module.time, "sleep", lambda _: None)
    client = OpenSearch("http://127.0.0.1:1")
    client.transport = LostDeployAnswer()
    MLCommons(client, poll_seconds=0).deploy("m1", timeout=5)
    assert [request for request in client.transport.requests if request[1].endswith("/_deploy")] == [
        ("POST", "/_plugins/_ml/models/m1/_deploy")
    ]
    assert client.transport.state == "DEPLOYED"


def test_local_file_upload_is_needed_only_when_something_is_uploaded():
    from ko_sparse.opensearch.preflight import LOCAL_FILE, ClusterFacts, settings_to_change

    facts = ClusterFacts("http://node:9200", "3.6.0", frozenset(), ("ml-node",), {LOCAL_FILE: "false"})
    assert settings_to_change(facts, upload=False, deploy=True, access=None, allow_models_on_data_nodes=False) == []
    (change,) = settings_to_change(facts, upload=True, deploy=True, access=None, allow_models_on_data_nodes=False)
    assert (change.setting, change.current, change.needed) == (LOCAL_FILE, "false", "true")
