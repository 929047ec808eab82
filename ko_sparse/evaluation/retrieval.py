"""Validation on held-out queries over their corpus: sentence-transformers'
``SparseInformationRetrievalEvaluator`` (dot product, nDCG@10 the primary metric, Recall@100)."""

from __future__ import annotations

from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

NAME = "validation"
CORPUS_CHUNK = 1000  # passages scored at a time: bounds the dense score block the library builds


def retrieval_evaluator(
    queries: dict[str, str], corpus: dict[str, str], qrels: dict[str, dict[str, int]], batch_size: int = 32
) -> SparseInformationRetrievalEvaluator:
    relevant = {qid: {d for d, grade in judged.items() if grade > 0} for qid, judged in qrels.items()}
    evaluator = SparseInformationRetrievalEvaluator(
        queries={qid: text for qid, text in queries.items() if relevant.get(qid)},
        corpus=corpus,
        relevant_docs=relevant,
        corpus_chunk_size=CORPUS_CHUNK,
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[10, 100],
        map_at_k=[100],
        batch_size=batch_size,
        name=NAME,
        write_csv=False,
    )
    evaluator.primary_metric = evaluator.primary_metric or "dot_ndcg@10"
    return evaluator
