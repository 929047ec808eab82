"""Published scores on the suite's sets, each with the file it was read from, shown beside ours.

Only figures read from a citable source are here: MTEB's own result files (``embeddings-benchmark/results``),
evaluated on the same dataset revision the suite pins. A set or model with no such file has no row: nothing
is filled in from memory. MTEB reports ``ndcg_at_10``, ``recall_at_100`` and ``mrr_at_10`` on the same scale
as ours (0-1).
"""

from __future__ import annotations

from dataclasses import dataclass

RESULTS = "https://github.com/embeddings-benchmark/results/blob"


@dataclass(frozen=True)
class Published:
    set_name: str
    model: str
    metrics: dict[str, float]
    source: str


PUBLISHED = (
    Published(
        "Ko-StrategyQA",
        "BAAI/bge-m3 (dense)",
        {"ndcg@10": 0.79405, "recall@100": 0.9141, "mrr@10": 0.81116},
        f"{RESULTS}/50857bc14252201c1a8bb3184b221ee3cc603203/results/BAAI__bge-m3/"
        "5617a9f61b028005a4858fdac845db406aefb181/Ko-StrategyQA.json",
    ),
    Published(
        "AutoRAGRetrieval",
        "BAAI/bge-m3 (dense)",
        {"ndcg@10": 0.83008, "recall@100": 1.0, "mrr@10": 0.78346},
        f"{RESULTS}/50857bc14252201c1a8bb3184b221ee3cc603203/results/BAAI__bge-m3/"
        "5617a9f61b028005a4858fdac845db406aefb181/AutoRAGRetrieval.json",
    ),
    Published(
        "Ko-StrategyQA",
        "intfloat/multilingual-e5-small (dense)",
        {"ndcg@10": 0.75157, "recall@100": 0.88959, "mrr@10": 0.77553},
        f"{RESULTS}/319e81d64298f3bdc5f09c8b6ff91f5015b3664c/results/intfloat__multilingual-e5-small/"
        "e4ce9877abf3edfe10b0d82785e83bdcb973e22e/Ko-StrategyQA.json",
    ),
)


def published_for(set_name: str) -> list[Published]:
    return [entry for entry in PUBLISHED if entry.set_name == set_name]
