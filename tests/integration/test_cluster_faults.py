"""Losing a data node of the ml-cluster profile (kill -9) while ``ko-sparse index`` writes and searches run.

The node killed: the elected cluster manager, never ko-sparse-data-1 (the node the client addresses, on 9260:
when it is the manager, a voting exclusion first makes it hand over to another data node). Losing the manager
is the harder case: its shard copies are lost and the two other data nodes first elect a new manager, which
then promotes the replicas. Each test brings the node back
(``opensearch/local.sh start --profile ml-cluster``) and waits for green, in a finalizer when it failed first.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field

import pytest
from opensearchpy import OpenSearch

from ko_sparse.cli.search import QueryModel, build_searcher
from ko_sparse.model.doc_only import load_model
from ko_sparse.model.pruning import Pruning
from tests.integration.conftest import local_node
from tests.integration.index_helpers import (
    QUERIES,
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

pytestmark = pytest.mark.ml_cluster
PROFILE, ADDRESSED = "ml-cluster", "ko-sparse-data-1"
DATA_NODES = {ADDRESSED, "ko-sparse-data-2", "ko-sparse-data-3"}
OPTIONS = ("--max-length", "64", "--prune", "top_k:32", "--batch-size", "25")
SEARCHED = 200  # documents in the searched index, and hits asked for: every match


@dataclass
class NodeLoss:
    """Kills one data node and brings it back; ``killed`` is the node down now."""

    client: OpenSearch
    killed: str | None = None
    log: list[str] = field(default_factory=list)

    def manager(self) -> str:
        return self.client.cat.cluster_manager(format="json")[0]["node"]

    def move_manager(self) -> None:
        """Have another data node elected when ko-sparse-data-1 is the manager (a voting exclusion makes it
        step down, and is lifted again), then wait until all three data nodes vote again: losing one then
        leaves a quorum of two."""
        if self.manager() == ADDRESSED:
            request = self.client.transport.perform_request
            request(
                "POST",
                "/_cluster/voting_config_exclusions",
                params={"node_names": ADDRESSED, "timeout": "60s", "request_timeout": 90},
            )
            try:
                wait_until(lambda: self.manager() != ADDRESSED, "another data node is elected")
            finally:
                request("DELETE", "/_cluster/voting_config_exclusions", params={"wait_for_removal": "false"})
        wait_until(lambda: self.voters() == 3, "three voting data nodes")

    def voters(self) -> int:
        path = "metadata.cluster_coordination.last_committed_config"
        state = self.client.cluster.state(metric="metadata", filter_path=path)
        return len(state["metadata"]["cluster_coordination"]["last_committed_config"])

    def kill(self) -> str:
        """kill -9 the elected cluster manager (see :meth:`move_manager`)."""
        name = self.manager()
        assert name != ADDRESSED
        pid = local_node("pid", "--profile", PROFILE, "--node", name).stdout.strip()
        assert pid.isdigit(), f"no pid for {name}"
        subprocess.run(["kill", "-9", pid], check=True)
        self.killed = name
        self.log.append(f"killed {name}, the elected cluster manager (pid {pid})")
        return name

    def wait_gone(self) -> None:
        health = self.client.cluster.health(wait_for_nodes="3", timeout="60s", request_timeout=90)
        assert not health["timed_out"], health

    def rejoin(self) -> float:
        """``local.sh start`` (starts the nodes that are down), then green with four nodes and no shard moving:
        the seconds it took."""
        began = time.monotonic()
        started = local_node("start", "--profile", PROFILE)
        assert started.returncode == 0, started.stderr[-2000:]
        health = self.client.cluster.health(
            wait_for_status="green",
            wait_for_nodes="4",
            wait_for_no_relocating_shards=True,
            wait_for_no_initializing_shards=True,
            timeout="180s",
            request_timeout=240,
        )
        assert health["status"] == "green" and not health["timed_out"], health
        self.killed = None
        seconds = time.monotonic() - began
        self.log.append(f"green again {seconds:.0f} s after local.sh start")
        return seconds


@pytest.fixture
def node_loss(ml_cluster):
    """A :class:`NodeLoss` on a green cluster; a node still down at the end is brought back."""
    loss = NodeLoss(ml_cluster.client())
    health = loss.client.cluster.health(
        wait_for_status="green", wait_for_nodes="4", timeout="120s", request_timeout=150
    )
    assert health["status"] == "green", health
    loss.move_manager()
    yield loss
    if loss.killed:
        loss.rejoin()
    print("\n".join(loss.log))


def wait_until(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not after {seconds} s: {what}"
        time.sleep(0.5)


def assert_copies_reassigned(client: OpenSearch, index: str) -> None:
    """Three primaries and three replicas STARTED, each pair on two data nodes. (Which nodes: a replica lost
    for longer than index.unassigned.node_left.delayed_timeout, 1 minute, is rebuilt on the two nodes left,
    so the rejoined node may hold none of this index.)"""
    shards = client.cat.shards(index=index, format="json", h="shard,prirep,state,node")
    assert sorted((row["shard"], row["prirep"]) for row in shards) == [(s, kind) for s in "012" for kind in "pr"]
    assert {row["state"] for row in shards} == {"STARTED"}, shards
    for shard in "012":
        assert len({row["node"] for row in shards if row["shard"] == shard}) == 2, shards
    assert {row["node"] for row in shards} <= DATA_NODES, shards


def test_kill_9_of_a_data_node_mid_bulk_loses_and_duplicates_nothing(
    ml_cluster, node_loss, opensearch, opensearch_url, saved_model, tmp_path
):
    index, client = "ko-sparse-test-faults-index", ml_cluster.client()
    passages = korean_passages(400)
    corpus = write_corpus(tmp_path / "docs.jsonl", passages)
    options = ("--model", str(saved_model), *OPTIONS, "--cache-dir", str(tmp_path / "cache"))
    arguments = index_arguments(ml_cluster.url, index, corpus, tmp_path / "out", *options)
    client.indices.delete(index=index, ignore_unavailable=True)
    opensearch.indices.delete(index=index, ignore_unavailable=True)
    try:
        process = start_index(arguments, tmp_path / "first.log")
        deadline = time.monotonic() + 300
        while committed(tmp_path / "out") < 100 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
        node_loss.kill()
        at_kill = committed(tmp_path / "out")
        assert at_kill < len(passages)
        node_loss.wait_gone()
        if process.wait(timeout=400) != 0:  # gave up after its retries: --resume finishes it
            log = (tmp_path / "first.log").read_text()
            assert "re-run the same command with --resume" in log, log[-2000:]
            node_loss.log.append(f"the run stopped at row {committed(tmp_path / 'out')}: resumed")
            run_index([*arguments, "--resume"])
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        node_loss.log.append(f"killed at row {at_kill}; retried because {summary['retried_because']}")
        assert summary["failed"] == 0 and summary["documents_in_index"] == len(passages)

        client.indices.refresh(index=index)
        assert client.count(index=index)["count"] == len(passages)
        ids = stored_ids(client, index)
        assert len(ids) == len(set(ids)) == len(passages) and set(ids) == {doc_id for doc_id, _ in passages}
        texts = [text for _, text in passages]
        vectors = fresh_vectors(load_model(saved_model, 64), texts, 64, 25, Pruning("top_k", 32))
        expected = dict(zip((doc_id for doc_id, _ in passages), vectors, strict=True))
        assert_stored_as_encoded(stored_vectors(client, index, expected), expected)

        # the same corpus indexed on the default node, without a fault, from the cache: the same rankings
        run_index(index_arguments(opensearch_url, index, corpus, tmp_path / "reference", *options))
        faulted = build_searcher(client, index, "sparse", QueryModel(path=saved_model), "rrf")
        reference = build_searcher(opensearch, index, "sparse", QueryModel(path=saved_model), "rrf")
        for query in QUERIES:  # every matching document with its score (the order of equal scores is the shards')
            got, want = (searcher.search(query, k=len(passages), explain=False) for searcher in (faulted, reference))
            assert got.hits and {h.doc_id: h.score for h in got.hits} == pytest.approx(
                {h.doc_id: h.score for h in want.hits}, rel=1e-6
            ), query

        node_loss.rejoin()
        assert_copies_reassigned(client, index)
        assert client.count(index=index)["count"] == len(passages)
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        opensearch.indices.delete(index=index, ignore_unavailable=True)


def scored(result) -> dict[str, float]:
    """Every hit with its score: the order of equal scores is the shard copy's, which changes when a replica
    answers instead of its primary."""
    return {hit.doc_id: hit.score for hit in result.hits}


@dataclass
class SearchStream:
    """BM25 and sparse searches, one after the other, in a thread until stopped: each answer or error, and
    when it came."""

    searchers: dict
    answers: list[tuple[float, str, str, dict[str, float] | None, str]] = field(default_factory=list)
    retried: list[tuple[float, str]] = field(default_factory=list)  # when, and the searcher's note
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for (mode, searcher), query in ((item, query) for item in self.searchers.items() for query in QUERIES):
                try:
                    result = searcher.search(query, mode, k=SEARCHED, explain=False)
                    self.answers.append((time.monotonic(), mode, query, scored(result), ""))
                    self.retried += [(time.monotonic(), note) for note in result.notes if "attempt" in note]
                except Exception as error:  # recorded: the test asserts there is none
                    self.answers.append((time.monotonic(), mode, query, None, repr(error)[:300]))


def test_searches_while_a_data_node_is_lost_and_rejoins_all_answer_as_before(
    ml_cluster, node_loss, saved_model, tmp_path
):
    index, client = "ko-sparse-test-faults-search", ml_cluster.client()
    corpus = write_corpus(tmp_path / "docs.jsonl", korean_passages(SEARCHED))
    client.indices.delete(index=index, ignore_unavailable=True)
    try:
        run_index(
            index_arguments(ml_cluster.url, index, corpus, tmp_path / "out", "--model", str(saved_model), *OPTIONS)
        )
        client.cluster.health(index=index, wait_for_status="green", timeout="60s", request_timeout=90)
        stream_client = ml_cluster.client()  # the stream's own connections, as another user's would be
        searchers = {
            mode: build_searcher(stream_client, index, mode, QueryModel(path=saved_model), "rrf")
            for mode in ("bm25", "sparse")
        }
        before = {
            (mode, query): scored(searcher.search(query, mode, k=SEARCHED, explain=False))
            for mode, searcher in searchers.items()
            for query in QUERIES
        }
        stream = SearchStream(searchers)
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        try:
            time.sleep(2)
            killed_at = time.monotonic()
            node_loss.kill()
            node_loss.wait_gone()
            time.sleep(5)  # searches on the two data nodes left, the lost copies' replicas now primaries
            node_loss.rejoin()  # and while the node comes back and its copies recover
            green_at = time.monotonic()
        finally:
            stream.stop.set()
            thread.join(timeout=120)
        errors = [answer for answer in stream.answers if answer[4]]
        assert not errors, errors[:5]
        changed = [(mode, query, hits) for _, mode, query, hits, _ in stream.answers if hits != before[mode, query]]
        assert all(before.values())
        assert not changed, [
            (mode, query, sorted(set(before[mode, query]) ^ set(hits or {}))[:5]) for mode, query, hits in changed[:5]
        ]
        during = sum(killed_at <= answer[0] <= green_at for answer in stream.answers)
        node_loss.log.append(f"{len(stream.answers)} searches, {during} between the kill and green again, none failed")
        node_loss.log += [f"{when - killed_at:+.1f} s after the kill: {note}" for when, note in stream.retried]
        assert during >= 2 * len(QUERIES)
        assert_copies_reassigned(client, index)
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
