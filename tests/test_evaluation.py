"""Ranking metrics against hand-computed values, and the synonym ranking evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from ko_sparse.evaluation.metrics import evaluate_run, per_query, recall_mrr_ndcg
from ko_sparse.evaluation.synonym_ranking import SynonymRankingEvaluator, vocabulary_words

QRELS = {"q1": {"d1": 1}, "q2": {"d1": 1, "d2": 1}, "q3": {"d9": 1}}
RUN = {
    "q1": {"d2": 0.9, "d1": 0.8, "d3": 0.1},
    "q2": {"d3": 0.9, "d4": 0.8, "d1": 0.7, "d5": 0.6, "d6": 0.5, "d2": 0.4},
}


def test_metrics_equal_hand_computed_values():
    values = evaluate_run(QRELS, RUN, recall_mrr_ndcg([1, 2, 5]))
    ndcg_q1 = 1 / math.log2(3)
    ndcg_q2 = (1 / math.log2(4) + 1 / math.log2(7)) / (1 + 1 / math.log2(3))
    # q3 is unranked and scores 0; the mean is over all three judged queries
    assert values["recall@1"] == pytest.approx(0.0)
    assert values["recall@2"] == pytest.approx((1 + 0) / 3)
    assert values["recall@5"] == pytest.approx((1 + 0.5) / 3)
    assert values["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 3)
    assert values["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 3)


def test_per_query_values():
    values = per_query(QRELS, RUN, recall_mrr_ndcg([2]))
    assert values["mrr"] == pytest.approx({"q1": 0.5, "q2": 1 / 3, "q3": 0.0})


PAIRS = [("당뇨", "당뇨병"), ("당뇨", "혈당"), ("고혈압", "혈압"), ("감기", "독감")]


def test_candidates_hold_every_target_and_seeded_distractors(tokenizer):
    first = SynonymRankingEvaluator(PAIRS, tokenizer, num_distractors=50, seed=1)
    again = SynonymRankingEvaluator(PAIRS, tokenizer, num_distractors=50, seed=1)
    other = SynonymRankingEvaluator(PAIRS, tokenizer, num_distractors=50, seed=2)
    assert first.anchors == ["감기", "고혈압", "당뇨"]
    assert first.candidates[:4] == ["당뇨병", "독감", "혈당", "혈압"]
    assert len(first.candidates) == 54
    assert first.candidates == again.candidates != other.candidates
    assert not set(first.candidates[4:]) & {"당뇨", "당뇨병", "혈당", "혈압", "고혈압", "감기", "독감"}
    assert set(first.candidates[4:]) <= set(vocabulary_words(tokenizer))
    assert first.qrels["2"] == {"0": 1, "2": 1}


def test_scores_rank_by_cosine(tokenizer):
    evaluator = SynonymRankingEvaluator(PAIRS, tokenizer, num_distractors=3, seed=0, k_values=[1, 2])
    n_candidates = len(evaluator.candidates)
    rng = np.random.default_rng(0)
    candidates = rng.random((n_candidates, 8)) * 0.1
    anchors = np.zeros((3, 8))
    # candidates: 0 당뇨병, 1 독감, 2 혈당, 3 혈압, then distractors
    # 감기 -> 독감 ranks first; 고혈압 -> 혈압 second, after a distractor; 당뇨 -> 당뇨병 and 혈당 on top
    candidates[1, 0] = anchors[0, 0] = 1
    candidates[3] = 0
    candidates[3, 1], candidates[3, 5] = 1, 0.5
    candidates[4] = 0
    candidates[4, 1] = 1
    anchors[1, 1] = 1
    candidates[0, 2] = candidates[2, 2] = 1
    anchors[2, 2] = 1
    values = evaluator.score(sp.csr_matrix(anchors), sp.csr_matrix(candidates))
    assert values["mrr"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert values["recall@1"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert values["recall@2"] == pytest.approx((1 + 1 + 1) / 3)


def test_anchor_is_never_its_own_candidate(tokenizer):
    pairs = [("혈압", "고혈압"), ("고혈압", "혈압")]
    evaluator = SynonymRankingEvaluator(pairs, tokenizer, num_distractors=0, k_values=[1])
    identical = sp.csr_matrix(np.ones((2, 4)))
    # all vectors equal: the only other candidate is the true target, so it ranks first
    assert evaluator.score(identical, identical)["mrr"] == pytest.approx(1.0)


def test_empty_pairs_rejected(tokenizer):
    with pytest.raises(ValueError, match="evaluation pairs are empty"):
        SynonymRankingEvaluator([("같다", "같다")], tokenizer)
