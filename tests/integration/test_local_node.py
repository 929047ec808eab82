"""opensearch/local.sh fails clearly: no Java, a taken port, an artifact that does not resolve,
a node that does not come up."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import local_node


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def empty_maven(tmp_path) -> Iterator[str]:
    """An HTTP server with no artifacts at all."""
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/maven2"
    server.shutdown()


def test_no_java(tmp_path):
    result = local_node(
        "start",
        KO_SPARSE_OPENSEARCH_PORT=str(free_port()),
        KO_SPARSE_OPENSEARCH_CACHE=str(tmp_path),
        OPENSEARCH_JAVA_HOME="",
        JAVA_HOME="",
        JAVA_SEARCH_DIRS=str(tmp_path / "no-jdks"),
    )
    assert result.returncode == 1
    assert "needs Java 21 or newer; none found" in result.stderr


def test_port_taken(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = local_node("start", KO_SPARSE_OPENSEARCH_PORT=str(port), KO_SPARSE_OPENSEARCH_CACHE=str(tmp_path))
    assert result.returncode == 1
    assert f"port {port} is already in use by another process" in result.stderr


def test_artifact_that_does_not_resolve(tmp_path, empty_maven):
    result = local_node(
        "start",
        KO_SPARSE_OPENSEARCH_PORT=str(free_port()),
        KO_SPARSE_OPENSEARCH_CACHE=str(tmp_path / "cache"),
        MAVEN_REPO=empty_maven,
    )
    assert result.returncode == 1
    assert "artifact org.opensearch.distribution.integ-test-zip:opensearch:3.6.0:zip does not resolve (HTTP 404" in (
        result.stderr
    )


def test_node_that_does_not_come_up_prints_why(opensearch_url):
    home = Path(local_node("home").stdout.strip())
    if not (home / ".ko-sparse-assembled").is_file():
        pytest.skip(f"no local node assembled in {home} (the tests use {opensearch_url})")
    result = local_node("start", KO_SPARSE_OPENSEARCH_PORT=str(free_port()), KO_SPARSE_OPENSEARCH_HEAP="lots")
    assert result.returncode == 1
    assert "Invalid initial heap size: -Xmslots" in result.stderr
    assert "the node did not start" in result.stderr
