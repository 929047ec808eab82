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
from ko_sparse.opensearch.pipelines import ingest_pipeline, parse_field_map
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
        {"sparse_encoding": {"model_id": "m1", "field_map": {"t": "e"}}}
    ]
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
    import click

    from ko_sparse.cli.errors import cluster_errors

    reason = "[parent] Data too large, data for [<http_request>] would be [2101621952/1.9gb]"
    info = {"error": {"type": "circuit_breaking_exception", "reason": reason}, "status": 429}
    with pytest.raises(click.ClickException) as raised, cluster_errors("http://127.0.0.1:9210"):
        raise TransportError(429, "circuit_breaking_exception", info)
    message = raised.value.message
    assert "heap is full" in message and "1.9gb" in message
    assert "indices.breaker.total.limit" in message and "-Xmx" in message and "KO_SPARSE_OPENSEARCH_HEAP" in message
    with pytest.raises(click.ClickException, match="answered 429: busy"), cluster_errors("http://127.0.0.1:9210"):
        raise TransportError(429, "busy", "busy")
