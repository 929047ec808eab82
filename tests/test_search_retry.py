"""A search refused for a passing reason (a data node lost mid-search) is sent again and says so; one refused
for good is not."""

from __future__ import annotations

import pytest
from opensearchpy import TransportError

import ko_sparse.opensearch.retry as retry_module
from ko_sparse.opensearch.corpus_index import MorphemeField
from ko_sparse.opensearch.search import Searcher

NODE_LOST = TransportError(
    500,
    "search_phase_execution_exception",
    {"error": {"type": "search_phase_execution_exception", "caused_by": {"type": "node_not_connected_exception"}}},
)
ANSWER = {"hits": {"hits": [{"_id": "d1", "_score": 2.5, "_source": {"text": "본문"}}]}}


class Encoder:
    def tokens(self, text: str) -> dict[str, float]:
        return {"서울": 1.0}


class Cluster:
    """Answers each search with the next outcome: an answer, or an error raised."""

    def __init__(self, *outcomes) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def search(self, index: str, body: dict, params: dict) -> dict:
        assert params["allow_partial_search_results"] == "false"  # a shard missing is refused, not hidden
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(retry_module.time, "sleep", waited.append)
    return waited


def test_a_search_failed_by_a_lost_node_is_sent_again_and_noted(sleeps):
    cluster = Cluster(NODE_LOST, ANSWER)
    result = Searcher(cluster, "docs", MorphemeField(nori=False), Encoder()).search("서울", explain=False)
    assert [(hit.doc_id, hit.score) for hit in result.hits] == [("d1", 2.5)]
    assert cluster.calls == 2 and sleeps == [1.0]
    assert result.notes == [
        "answered at attempt 2 (refused before with 500 search_phase_execution_exception "
        "(caused by node_not_connected_exception))"
    ]


def test_a_search_refused_for_good_is_not_retried_and_one_still_failing_raises(sleeps):
    bad = TransportError(400, "parsing_exception", {"error": {"type": "parsing_exception"}})
    searcher = Searcher(Cluster(bad), "docs", MorphemeField(nori=False), Encoder())
    with pytest.raises(TransportError) as refused:
        searcher.search("서울", explain=False)
    assert refused.value.status_code == 400 and sleeps == []

    searcher = Searcher(Cluster(NODE_LOST, NODE_LOST, NODE_LOST), "docs", MorphemeField(nori=False), Encoder())
    with pytest.raises(TransportError):
        searcher.search("서울", explain=False)
    assert sleeps == [1.0, 2.0]
