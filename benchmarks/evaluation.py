"""Evaluation speed: the synonym ranking evaluation against the notebook's per-anchor loop.

Both rank the same candidates (every target plus seeded vocabulary distractors) for the same anchors
with the same model, and are timed the same way (one warm-up run each, then interleaved repeats).
The notebook's form is its own code path: its SPLADE forward (log1p/ReLU/mask on ``[B, L, V]``, then
max) encodes candidates into a dense ``[C, vocab]`` tensor, then each anchor is encoded alone,
``F.cosine_similarity`` is taken against all candidates, every candidate is sorted and the ranked
list walked in Python. ko-sparse encodes everything once in batches and ranks with one sparse matrix
product and a partial sort. Both MRRs are recorded: they must agree.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import FULL_MODEL, arguments, default_device, paired_timed, per_second, report, tiny_encoder
from ko_sparse.data.paraphrase_triplets import resolve_builtin
from ko_sparse.data.triplets import load_eval_pairs
from ko_sparse.evaluation.synonym_ranking import SynonymRankingEvaluator
from ko_sparse.losses import notebook_reference as notebook
from ko_sparse.model.splade import mlm_of
from ko_sparse.paths import cache_dir

MAX_LENGTH = 32  # the notebook's evaluation length
FULL_RANKING = 10**9  # clamped to the number of candidates


@torch.no_grad()
def notebook_evaluation(encoder, evaluator: SynonymRankingEvaluator, batch_size: int = 256) -> float:
    """The notebook's ``evaluate_ranking_metrics`` loop on the evaluator's anchors and candidates; its MRR."""
    mlm, tokenizer = mlm_of(encoder).eval(), encoder.tokenizer
    device = next(mlm.parameters()).device
    candidates = evaluator.candidates
    embeddings = []
    for start in range(0, len(candidates), batch_size):
        inputs = tokenizer(
            candidates[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
            return_tensors="pt",
        ).to(device)
        embeddings.append(notebook.splade_forward(mlm, inputs["input_ids"], inputs["attention_mask"]).cpu())
    embeddings = torch.cat(embeddings)
    reciprocal_ranks = []
    for row, anchor in enumerate(evaluator.anchors):
        inputs = tokenizer(anchor, truncation=True, max_length=MAX_LENGTH, return_tensors="pt").to(device)
        anchor_vector = notebook.splade_forward(mlm, inputs["input_ids"], inputs["attention_mask"]).cpu()
        similarities = F.cosine_similarity(anchor_vector, embeddings, dim=1).numpy()
        ranked = [candidates[i] for i in np.argsort(-similarities) if candidates[i] != anchor]
        relevant = {candidates[int(c)] for c in evaluator.qrels[str(row)]}
        first = next((rank for rank, term in enumerate(ranked, 1) if term in relevant), None)
        reciprocal_ranks.append(1.0 / first if first else 0.0)
    return float(np.mean(reciprocal_ranks))


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny:64x2, 60 anchors, 2,000 distractors")
    device = default_device()
    spec, anchors, distractors = (
        ("tiny:64x2", 60, 2000) if args.quick else (FULL_MODEL, 500, 5000)
    )  # the notebook: 500 anchors, 5,000 words
    encoder = tiny_encoder(spec, MAX_LENGTH, device)
    _, pairs_file = resolve_builtin("builtin:parakqc", cache_dir() / "data", seed=42)
    evaluator = SynonymRankingEvaluator(
        load_eval_pairs(pairs_file),
        encoder.tokenizer,
        num_distractors=distractors,
        max_anchors=anchors,
        max_length=MAX_LENGTH,
        depth=FULL_RANKING,  # rank every candidate, as the notebook does
    )
    ours_s, theirs_s = paired_timed(
        lambda: evaluator.evaluate(encoder), lambda: notebook_evaluation(encoder, evaluator), args.repeat
    )
    report(
        "evaluation",
        per_second(len(evaluator.anchors), ours_s),
        "anchors/s",
        "notebook per-anchor loop (its own SPLADE forward)",
        per_second(len(evaluator.anchors), theirs_s),
        target=10.0,
        model=spec,
        anchors=len(evaluator.anchors),
        candidates=len(evaluator.candidates),
        mrr=evaluator.evaluate(encoder)["mrr"],
        notebook_mrr=notebook_evaluation(encoder, evaluator),
    )


if __name__ == "__main__":
    main()
