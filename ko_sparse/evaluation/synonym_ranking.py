"""Synonym ranking: for each anchor, rank every candidate term; are its true synonyms on top?

Fixes the notebook's flaw, which ranked a random 5,000-term vocabulary sample so most true synonyms
were never candidates: here the candidates are every target of the evaluation set plus distractor
words sampled from the vocabulary with a fixed seed. Anchors and candidates are encoded once in
batches and scored with one sparse matrix product (cosine, as the notebook).

A sentence-transformers evaluator: ``SparseEncoderTrainer`` runs it during training and picks the best
model by its ``mrr``. The library has no synonym-ranking evaluator (its IR evaluator ranks documents for
queries with relevance judgements; here the candidates are terms with seeded distractors).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from sentence_transformers import SparseEncoder
from sentence_transformers.base.evaluation import BaseEvaluator
from transformers import PreTrainedTokenizerBase

from ko_sparse.evaluation.metrics import evaluate_run, recall_mrr_ndcg
from ko_sparse.model.doc_only import split_model
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.sparse_ops import l2_normalise_rows

HANGUL = re.compile("[\uac00-\ud7a3]")


def vocabulary_words(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """Whole-word Hangul vocabulary entries of two or more characters, sorted."""
    special = set(tokenizer.all_special_tokens)
    return sorted(
        token
        for token in tokenizer.get_vocab()
        if len(token) >= 2 and not token.startswith("##") and token not in special and HANGUL.search(token)
    )


class SynonymRankingEvaluator(BaseEvaluator):
    """Recall@k, MRR (within the top ``depth``) and nDCG@10 of true targets among all candidates."""

    def __init__(
        self,
        pairs: Iterable[tuple[str, str]],
        tokenizer: PreTrainedTokenizerBase,
        k_values: Iterable[int] = (5, 10, 20),
        num_distractors: int = 5000,
        max_anchors: int | None = None,
        seed: int = 42,
        max_length: int = 32,
        batch_size: int = 256,
        depth: int = 100,
        name: str = "synonyms",
    ) -> None:
        super().__init__()
        self.name = name
        self.primary_metric = "mrr"
        k_values = tuple(k_values)
        targets_of: dict[str, set[str]] = defaultdict(set)
        for source, target in pairs:
            if source != target:
                targets_of[source].add(target)
        if not targets_of:
            raise ValueError("the evaluation pairs are empty (no source/target pair with different texts)")
        rng = random.Random(seed)
        anchors = sorted(targets_of)
        if max_anchors is not None and len(anchors) > max_anchors:
            anchors = sorted(rng.sample(anchors, max_anchors))
        targets = sorted(set().union(*targets_of.values()))
        pool = [word for word in vocabulary_words(tokenizer) if word not in targets_of and word not in targets]
        distractors = rng.sample(pool, min(num_distractors, len(pool)))
        self.anchors = anchors
        self.candidates = targets + distractors
        position = {text: i for i, text in enumerate(self.candidates)}
        self.qrels = {
            str(a): {str(position[target]): 1 for target in targets_of[anchor]} for a, anchor in enumerate(anchors)
        }
        self.measures = recall_mrr_ndcg(k_values)
        self.max_length = max_length
        self.batch_size = batch_size
        self.depth = min(max(depth, *k_values), len(self.candidates))

    def __call__(
        self, model: SparseEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Metrics of ``model`` named ``<name>_<metric>``. A doc-only model's anchors are its IDF queries."""
        metrics = self.prefix_name_to_metrics(self.evaluate(model), self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def evaluate(self, model: SparseEncoder) -> dict[str, float]:
        """Unprefixed metrics (recall@k, mrr, ndcg@10)."""
        parts = split_model(model)
        encode = dict(batch_size=self.batch_size, max_length=self.max_length)
        if parts.doc_only:
            anchors = parts.encode_queries(self.anchors)
        else:
            anchors = encode_sparse(parts.encoder, self.anchors, **encode)
        return self.score(anchors, encode_sparse(parts.encoder, self.candidates, **encode))

    def score(self, anchor_vectors: sp.csr_matrix, candidate_vectors: sp.csr_matrix) -> dict[str, float]:
        """Metrics of a ranking by cosine similarity of the given anchor and candidate vectors."""
        anchors = l2_normalise_rows(anchor_vectors)
        candidates = l2_normalise_rows(candidate_vectors)
        candidate_index = {text: i for i, text in enumerate(self.candidates)}
        run: dict[str, dict[str, float]] = {}
        for start in range(0, len(self.anchors), self.batch_size):
            # candidates @ anchors.T: scipy converts the transposed operand, and the anchor batch is the small one
            scores = (candidates @ anchors[start : start + self.batch_size].T).T.toarray()
            for row, scores_of_anchor in enumerate(scores):
                anchor = self.anchors[start + row]
                if anchor in candidate_index:
                    scores_of_anchor[candidate_index[anchor]] = -np.inf
                top = np.argpartition(-scores_of_anchor, self.depth - 1)[: self.depth]
                run[str(start + row)] = {
                    str(c): float(scores_of_anchor[c]) for c in top if np.isfinite(scores_of_anchor[c])
                }
        return evaluate_run(self.qrels, run, self.measures)
