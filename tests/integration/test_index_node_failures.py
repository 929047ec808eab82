"""ko-sparse index when the node fails: killed with kill -9 mid-run, or refusing bulk requests (429).

These tests restart the node under test (the one at KO_SPARSE_OPENSEARCH_URL, through opensearch/local.sh
with its port: never another node) with a one-thread write pool and a one-request queue, kill it, start
it again, and finally restart it with its normal settings. A node local.sh did not start is not touched:
the tests are skipped.
"""

from __future__ import annotations

import os
import subprocess
import time
from urllib.parse import urlparse

import pytest

from ko_sparse.model.doc_only import load_model
from ko_sparse.model.pruning import Pruning
from tests.integration.conftest import LOCAL_NODE
from tests.integration.index_helpers import (
    assert_stored_as_encoded,
    committed,
    fresh_vectors,
    index_arguments,
    korean_passages,
    run_index,
    start_index,
    stored_ids,
    stored_vectors,
    write_corpus,
)

SMALL_WRITE_QUEUE = "thread_pool.write.size=1 thread_pool.write.queue_size=1"
OPTIONS = ("--max-length", "64", "--prune", "top_k:32")


def node(command: str, port: int, settings: str = "") -> subprocess.CompletedProcess:
    environment = {**os.environ, "KO_SPARSE_OPENSEARCH_PORT": str(port), "KO_SPARSE_OPENSEARCH_SETTINGS": settings}
    return subprocess.run([str(LOCAL_NODE), command], capture_output=True, text=True, env=environment, timeout=600)


def restart(port: int, settings: str = "") -> None:
    node("stop", port)
    started = node("start", port, settings)
    assert started.returncode == 0, started.stderr


@pytest.fixture(scope="module")
def small_queue_node(opensearch_url, opensearch):
    """The node under test restarted with a tiny write queue; its normal settings come back afterwards."""
    url = urlparse(opensearch_url)
    if url.hostname not in ("127.0.0.1", "localhost") or node("pid", url.port or 9200).returncode != 0:
        pytest.skip(f"the node at {opensearch_url} was not started by opensearch/local.sh: not killing it")
    port = url.port or 9200
    restart(port, SMALL_WRITE_QUEUE)
    yield port
    restart(port)


def test_kill_9_during_indexing_then_resume_gives_the_whole_corpus_once(
    small_queue_node, opensearch, opensearch_url, trained_tiny_model, tmp_path
):
    index, port = "ko-sparse-test-index-killed", small_queue_node
    passages = korean_passages(600)
    corpus = write_corpus(tmp_path / "docs.jsonl", passages)
    arguments = index_arguments(
        opensearch_url, index, corpus, tmp_path / "out", "--model", str(trained_tiny_model), *OPTIONS,
        "--batch-size", "25", "--max-retries", "2",
    )  # fmt: skip
    opensearch.indices.delete(index=index, ignore_unavailable=True)
    try:
        process = start_index(arguments, tmp_path / "first.log")
        deadline = time.monotonic() + 300
        while committed(tmp_path / "out") < 150 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = node("pid", port).stdout.strip()
        assert pid and process.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
        subprocess.run(["kill", "-9", pid], check=True)
        assert process.wait(timeout=300) == 1
        log = (tmp_path / "first.log").read_text()
        assert "re-run the same command with --resume" in log, log[-2000:]
        stopped_at = committed(tmp_path / "out")
        assert 150 <= stopped_at < len(passages)

        started = node("start", port, SMALL_WRITE_QUEUE)
        assert started.returncode == 0, started.stderr
        summary = run_index([*arguments, "--resume"])
        assert summary["resumed_from_row"] == stopped_at
        assert summary["indexed"] == summary["documents_in_index"] == len(passages)
        ids = stored_ids(opensearch, index)
        assert len(ids) == len(set(ids)) == len(passages) and set(ids) == {doc_id for doc_id, _ in passages}
        model = load_model(trained_tiny_model, 64)
        texts = [text for _, text in passages]
        vectors = fresh_vectors(model, texts, 64, 25, Pruning("top_k", 32))  # as the command batched them
        expected = dict(zip((doc_id for doc_id, _ in passages), vectors, strict=True))
        assert_stored_as_encoded(stored_vectors(opensearch, index, expected), expected)
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)


def test_a_full_write_queue_is_retried_and_nothing_is_lost(
    small_queue_node, opensearch, opensearch_url, trained_tiny_model, tmp_path
):
    passages = korean_passages(600)
    corpus = write_corpus(tmp_path / "docs.jsonl", passages)
    model_options = ("--model", str(trained_tiny_model), *OPTIONS, "--cache-dir", str(tmp_path / "cache"))
    first, flooded = "ko-sparse-test-index-prepare", "ko-sparse-test-index-429"
    for index in (first, flooded):
        opensearch.indices.delete(index=index, ignore_unavailable=True)
    try:  # the first run encodes and caches; the second reads the cache and sends as fast as the cluster answers
        run_index(index_arguments(opensearch_url, first, corpus, tmp_path / "a", *model_options, "--batch-size", "20"))
        summary = run_index(
            index_arguments(
                opensearch_url, flooded, corpus, tmp_path / "b", *model_options,
                "--batch-size", "20", "--concurrency", "8", "--max-retries", "10",
            )
        )  # fmt: skip
        assert summary["this_run"]["cached_batches"] == len(passages) // 20
        assert summary["retried_because"].get("429", 0) > 0  # the node refused documents, they were sent again
        assert summary["failed"] == 0 and summary["indexed"] == summary["documents_in_index"] == len(passages)
        assert sorted(stored_ids(opensearch, flooded)) == sorted(doc_id for doc_id, _ in passages)
    finally:
        for index in (first, flooded):
            opensearch.indices.delete(index=index, ignore_unavailable=True)
