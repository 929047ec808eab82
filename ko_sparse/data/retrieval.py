"""``ko-sparse data build --retrieval SOURCE``: (query, positive passage, hard negatives) rows for the
retrieval recipe, from queries + corpus + relevance judgements.

- SOURCE: a bundled set (``miracl-ko``...), a BEIR folder, or a Hugging Face dataset id (MTEB layout).
- Queries are split into train and validation (whole queries, seeded); the validation queries, with the
  whole corpus and their judgements, are written as a BEIR folder (``eval/``) for the trainer's
  retrieval evaluator.
- Negatives: the corpus ranked by BM25 over kiwipiepy morphemes (fused with the current model's ranking
  when the caller gives one), the best-ranked passages that are not judged relevant; judged positives
  are never negatives. Too few ranked candidates are filled with random non-relevant passages.
- Teacher scores (optional): ``score(query, passage)`` for the positive and every negative, computed
  once and cached in ``teacher_scores.jsonl`` (a re-run after an interruption continues where it
  stopped), stored as the ``teacher_scores`` column.
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
STATS_FILE = "stats.json"
RANK_BATCH = 256
SCORE_BATCH = 128

Scorer = Callable[[list[tuple[str, str]]], list[float]]


@dataclass
class RetrievalBuildConfig:
    source: str
    output_dir: Path
    negatives: int = 4
    validation_fraction: float = 0.2
    seed: int = 42

    def __post_init__(self) -> None:
        if self.negatives < 1:
            raise DataError(f"--negatives {self.negatives}: at least 1")
        if not 0 < self.validation_fraction < 1:
            raise DataError(f"--validation-fraction {self.validation_fraction}: expected 0 < fraction < 1")


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


def mine_examples(dataset: RetrievalSet, ranker: Ranker, negatives: int, rng: random.Random) -> list[Example]:
    """One example per (query, judged-relevant passage in the corpus), with the same hard negatives."""
    doc_ids = list(dataset.corpus)
    query_ids = sorted(dataset.queries)
    examples = []
    for start in tqdm(range(0, len(query_ids), RANK_BATCH), desc="Mining negatives", unit="batch"):
        batch = query_ids[start : start + RANK_BATCH]
        for qid, ranking in zip(batch, ranker([dataset.queries[q] for q in batch]), strict=True):
            relevant = {d for d, grade in dataset.qrels.get(qid, {}).items() if grade > 0}
            chosen = [doc_ids[i] for i in ranking if doc_ids[i] not in relevant][:negatives]
            while len(chosen) < negatives and len(chosen) < len(doc_ids) - len(relevant):
                candidate = rng.choice(doc_ids)
                if candidate not in relevant and candidate not in chosen:
                    chosen.append(candidate)
            examples.extend(Example(qid, d, tuple(chosen)) for d in sorted(relevant) if d in dataset.corpus)
    return examples


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
            row["teacher_scores"] = [teacher.scores[(example.query_id, d)] for d in ids]
        table.append(row)
    return table


def build_retrieval(
    config: RetrievalBuildConfig,
    model_ranker: Callable[[list[str]], Ranker] | None = None,
    teacher: Scorer | None = None,
) -> dict:
    """Write ``triplets/``, ``eval/`` and ``stats.json`` (and ``teacher_scores.jsonl`` with a teacher)."""
    dataset = load_set(config.source)
    if not dataset.queries:
        raise DataError(f"--retrieval {config.source}: no query has a relevant passage")
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    texts = list(dataset.corpus.values())
    ranker = bm25_ranker(texts, MorphemeTokenizer(), depth=min(DEPTH, len(texts)))
    if model_ranker is not None:
        ranker = fused_ranker([ranker, model_ranker(texts)])
    examples = mine_examples(dataset, ranker, config.negatives, random.Random(config.seed))
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
        "negatives": "BM25 (kiwipiepy morphemes)" + (" fused with the model's ranking" if model_ranker else ""),
        "teacher": teacher is not None,
        "splits": {name: {"rows": len(split), "queries": len(set(split["query"]))} for name, split in splits.items()},
        "validation_queries": len(held_out.queries),
    }
    (folder / STATS_FILE).write_text(json.dumps(stats, indent=2, ensure_ascii=False), encoding="utf-8")
    return stats


def load_eval_retrieval(folder: str | Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """Queries, corpus and judgements of a BEIR folder (``eval/`` of a retrieval build)."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError(
            f"data.eval_retrieval={str(path)!r}: not a folder (expected the eval/ of data build --retrieval)"
        )
    dataset = load_beir(path)
    return dataset.queries, dataset.corpus, dataset.qrels
