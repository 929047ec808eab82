"""``ko-sparse data build --retrieval SOURCE``: (query, positive passage, hard negatives) rows for the
retrieval recipe, from queries + corpus + relevance judgements.

- SOURCE: a bundled set (``miracl-ko``...), a BEIR folder, or a Hugging Face dataset id (MTEB layout).
- Queries are split into train and validation (whole queries, seeded); the validation queries, with the
  whole corpus and their judgements, are written as a BEIR folder (``eval/``) for the trainer's
  retrieval evaluator.
- Negatives: the corpus ranked by BM25 over kiwipiepy morphemes (fused with the current model's ranking
  when the caller gives one), the best-ranked passages that are not judged relevant; beside them, with
  a dense ranking from the caller (``--dense-miner``), the dense retriever's best-ranked passages that
  BM25 did not already give (``negative_1..N`` are BM25's, then the dense ones); judged positives are
  never negatives. Too few ranked candidates are filled with random non-relevant passages.
- Teacher scores (optional): ``score(query, passage)`` for the positive and every negative, computed
  once and cached in ``teacher_scores.jsonl`` (a re-run after an interruption continues where it
  stopped), stored as the ``teacher_scores`` column, and the margins ``score(positive) - score(negative_i)``
  (what ``SparseMarginMSELoss`` learns) as ``teacher_margins``.
- ``stats.json`` records which miners gave how many negatives and which teacher scored them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm

from ko_sparse.data.negatives import DEPTH, Ranker, bm25_ranker, fused_ranker
from ko_sparse.data.retrieval_sets import RetrievalSet, load_beir, load_set, write_beir
from ko_sparse.errors import DataError
from ko_sparse.text.morphemes import MorphemeTokenizer

TRIPLETS_DIR = "triplets"
EVAL_DIR = "eval"
TEACHER_FILE = "teacher_scores.jsonl"
TEACHER_COLUMN = "teacher_scores"
MARGIN_COLUMN = "teacher_margins"
BM25_RANKING = "BM25 (kiwipiepy morphemes)"
STATS_FILE = "stats.json"
RANK_BATCH = 256
SCORE_BATCH = 128

Scorer = Callable[[list[tuple[str, str]]], list[float]]


@dataclass
class RetrievalBuildConfig:
    """``negatives`` from BM25 and ``dense_negatives`` from the dense miner named ``dense_miner``; ``teacher``
    names the scorer (both recorded in ``stats.json``)."""

    source: str
    output_dir: Path
    negatives: int = 4
    validation_fraction: float = 0.2
    seed: int = 42
    dense_miner: str | None = None
    dense_negatives: int = 0
    teacher: str | None = None

    def __post_init__(self) -> None:
        if self.negatives < 0 or self.dense_negatives < 0 or self.negatives + self.dense_negatives < 1:
            raise DataError(
                f"--negatives {self.negatives} --dense-negatives {self.dense_negatives}: at least 1 negative in all"
            )
        if self.dense_negatives and not self.dense_miner:
            raise DataError(f"--dense-negatives {self.dense_negatives} needs --dense-miner MODEL")
        if not 0 < self.validation_fraction < 1:
            raise DataError(f"--validation-fraction {self.validation_fraction}: expected 0 < fraction < 1")


@dataclass(frozen=True)
class Miner:
    """A ranking of the corpus and how many negatives it gives each query."""

    ranker: Ranker
    count: int


@dataclass(frozen=True)
class Example:
    query_id: str
    positive_id: str
    negative_ids: tuple[str, ...]


def split_queries(query_ids: list[str], fraction: float, seed: int) -> set[str]:
    """The validation queries: a seeded share of the queries (at least one, at most all but one)."""
    shuffled = sorted(query_ids)
    random.Random(seed).shuffle(shuffled)
    count = min(max(1, round(len(shuffled) * fraction)), len(shuffled) - 1)
    return set(shuffled[:count])


def mine_examples(dataset: RetrievalSet, miners: list[Miner], rng: random.Random) -> list[Example]:
    """One example per (query, judged-relevant passage in the corpus), with the same hard negatives: each
    miner's slots in turn, its best-ranked non-relevant passages that no earlier slot holds (random ones
    when its ranking runs out)."""
    doc_ids = list(dataset.corpus)
    query_ids = sorted(dataset.queries)
    examples = []
    for start in tqdm(range(0, len(query_ids), RANK_BATCH), desc="Mining negatives", unit="batch"):
        batch = query_ids[start : start + RANK_BATCH]
        texts = [dataset.queries[q] for q in batch]
        rankings = [miner.ranker(texts) for miner in miners]
        for row, qid in enumerate(batch):
            relevant = {d for d, grade in dataset.qrels.get(qid, {}).items() if grade > 0}
            chosen: list[str] = []
            for miner, ranking in zip(miners, rankings, strict=True):
                fresh = [doc_ids[i] for i in ranking[row] if doc_ids[i] not in relevant]
                slots = [d for d in dict.fromkeys(fresh) if d not in chosen][: miner.count]
                chosen.extend(slots)
                fill_randomly(chosen, len(chosen) + miner.count - len(slots), doc_ids, relevant, rng)
            examples.extend(Example(qid, d, tuple(chosen)) for d in sorted(relevant) if d in dataset.corpus)
    return examples


def fill_randomly(chosen: list[str], size: int, doc_ids: list[str], relevant: set[str], rng: random.Random) -> None:
    """Append random non-relevant passages not yet chosen until ``size`` (or the corpus runs out)."""
    while len(chosen) < size and len(chosen) < len(doc_ids) - len(relevant):
        candidate = rng.choice(doc_ids)
        if candidate not in relevant and candidate not in chosen:
            chosen.append(candidate)


class TeacherCache:
    """``teacher_scores.jsonl``: one ``{"query_id", "doc_id", "score"}`` line per scored pair, appended as
    batches finish, so an interrupted scoring resumes without redoing what was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.scores: dict[tuple[str, str], float] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.scores[(record["query_id"], record["doc_id"])] = float(record["score"])

    def fill(self, pairs: list[tuple[str, str]], dataset: RetrievalSet, score: Scorer) -> None:
        missing = sorted({pair for pair in pairs if pair not in self.scores})
        with self.path.open("a", encoding="utf-8") as out:
            for start in tqdm(range(0, len(missing), SCORE_BATCH), desc="Teacher scores", unit="batch"):
                batch = missing[start : start + SCORE_BATCH]
                values = score([(dataset.queries[q], dataset.corpus[d]) for q, d in batch])
                for (qid, docid), value in zip(batch, values, strict=True):
                    self.scores[(qid, docid)] = float(value)
                    out.write(json.dumps({"query_id": qid, "doc_id": docid, "score": float(value)}) + "\n")
                out.flush()


def rows(examples: list[Example], dataset: RetrievalSet, teacher: TeacherCache | None) -> list[dict]:
    table = []
    for example in examples:
        row = {"query": dataset.queries[example.query_id], "positive": dataset.corpus[example.positive_id]}
        row |= {f"negative_{i + 1}": dataset.corpus[d] for i, d in enumerate(example.negative_ids)}
        if teacher is not None:
            ids = (example.positive_id, *example.negative_ids)
            scores = [teacher.scores[(example.query_id, d)] for d in ids]
            row[TEACHER_COLUMN] = scores
            row[MARGIN_COLUMN] = [scores[0] - score for score in scores[1:]]
        table.append(row)
    return table


def build_retrieval(
    config: RetrievalBuildConfig,
    model_ranker: Callable[[list[str]], Ranker] | None = None,
    teacher: Scorer | None = None,
    dense_ranker: Callable[[list[str]], Ranker] | None = None,
) -> dict:
    """Write ``triplets/``, ``eval/`` and ``stats.json`` (and ``teacher_scores.jsonl`` with a teacher).
    ``model_ranker``/``dense_ranker`` make a ranker of the corpus texts (the data layer loads no model)."""
    if (dense_ranker is None) != (config.dense_miner is None):
        raise ValueError("a dense ranker goes with config.dense_miner naming it, and only with it")
    dataset = load_set(config.source)
    if not dataset.queries:
        raise DataError(f"--retrieval {config.source}: no query has a relevant passage")
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    texts = list(dataset.corpus.values())
    miners = []
    if config.negatives:
        ranker = bm25_ranker(texts, MorphemeTokenizer(), depth=min(DEPTH, len(texts)))
        if model_ranker is not None:
            ranker = fused_ranker([ranker, model_ranker(texts)])
        miners.append(Miner(ranker, config.negatives))
    if config.dense_negatives:
        miners.append(Miner(dense_ranker(texts), config.dense_negatives))
    examples = mine_examples(dataset, miners, random.Random(config.seed))
    cache = None
    if teacher is not None:
        cache = TeacherCache(folder / TEACHER_FILE)
        pairs = [(e.query_id, d) for e in examples for d in (e.positive_id, *e.negative_ids)]
        cache.fill(pairs, dataset, teacher)
    validation = split_queries(list(dataset.queries), config.validation_fraction, config.seed)
    splits = {
        name: Dataset.from_list(rows([e for e in examples if (e.query_id in validation) == held_out], dataset, cache))
        for name, held_out in (("train", False), ("validation", True))
    }
    DatasetDict(splits).save_to_disk(str(folder / TRIPLETS_DIR))
    held_out = RetrievalSet(
        f"{dataset.name}-validation",
        dataset.corpus,
        {q: t for q, t in dataset.queries.items() if q in validation},
        {q: j for q, j in dataset.qrels.items() if q in validation},
        f"held-out queries of {dataset.name}",
        dataset.licence,
    )
    write_beir(folder / EVAL_DIR, held_out)
    stats = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "source": {"name": dataset.name, "queries": len(dataset.queries), "documents": len(dataset.corpus)},
        "miners": miner_provenance(config, model_ranker is not None),
        "teacher": (config.teacher or "unnamed scorer") if teacher is not None else None,
        "splits": {name: {"rows": len(split), "queries": len(set(split["query"]))} for name, split in splits.items()},
        "validation_queries": len(held_out.queries),
    }
    (folder / STATS_FILE).write_text(json.dumps(stats, indent=2, ensure_ascii=False), encoding="utf-8")
    return stats


def miner_provenance(config: RetrievalBuildConfig, fused: bool) -> list[dict]:
    """Which rankings gave the negatives, in column order (``negative_1`` first)."""
    miners = []
    if config.negatives:
        ranking = BM25_RANKING + (" fused with the model's ranking" if fused else "")
        miners.append({"miner": "bm25", "ranking": ranking, "negatives": config.negatives})
    if config.dense_negatives:
        miners.append({"miner": "dense", "model": config.dense_miner, "negatives": config.dense_negatives})
    return miners


def load_eval_retrieval(folder: str | Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """Queries, corpus and judgements of a BEIR folder (``eval/`` of a retrieval build)."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError(
            f"data.eval_retrieval={str(path)!r}: not a folder (expected the eval/ of data build --retrieval)"
        )
    dataset = load_beir(path)
    return dataset.queries, dataset.corpus, dataset.qrels
