"""Sentence pairs with the same meaning: the bundled Korean sets and a user's own files.

Bundled (see ``resources/data/pairs/NOTICE.md``): paraKQC paraphrase sets, KorSTS pairs scored at
least ``min_sts_score``, KorNLI entailments, and Question_pair duplicates. In Question_pair,
``is_duplicate`` 0 marks the same question (checked on the rows: "2년여의 만남" / "2년 동안 사궜어"
is 0, "1000일 만난 여자친구와 이별" / "10년 연예의끝" is 1).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ko_sparse.data.jsonl import read_jsonl
from ko_sparse.errors import DataError
from ko_sparse.resources import PAIRS_DIR
from ko_sparse.resources.parakqc import read_parakqc_sets

BUNDLED_SOURCES = ("parakqc", "korsts", "kornli", "question_pair")


@dataclass(frozen=True)
class Pair:
    source: str
    target: str
    origin: str


def parakqc_pairs() -> Iterator[Pair]:
    """Each sentence with the next one of its set (the set closes in a ring)."""
    for group in read_parakqc_sets():
        for i, sentence in enumerate(group):
            yield Pair(sentence, group[(i + 1) % len(group)], "parakqc")


def korsts_pairs(min_score: float = 4.0) -> Iterator[Pair]:
    for split in ("train", "dev", "test"):
        path = PAIRS_DIR / "KorSTS" / f"sts-{split}.tsv"
        with path.open(encoding="utf-8") as rows:
            for row in csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE):
                if float(row["score"]) >= min_score and row["sentence1"] != row["sentence2"]:
                    yield Pair(row["sentence1"].strip(), row["sentence2"].strip(), "korsts")


def kornli_pairs() -> Iterator[Pair]:
    for split in ("dev", "test"):
        with (PAIRS_DIR / "KorNLI-xnli" / f"xnli.{split}.ko.tsv").open(encoding="utf-8") as rows:
            for row in csv.DictReader(rows, delimiter="\t", quoting=csv.QUOTE_NONE):
                if row["gold_label"] == "entailment":
                    yield Pair(row["sentence1"].strip(), row["sentence2"].strip(), "kornli")


def question_pairs() -> Iterator[Pair]:
    for name in ("kor_pair_train.csv", "kor_Pair_test.csv"):
        with (PAIRS_DIR / "Question_pair" / name).open(encoding="utf-8-sig") as rows:
            for row in csv.DictReader(rows):
                if row["is_duplicate"].strip() == "0":
                    yield Pair(row["question1"].strip(), row["question2"].strip(), "question_pair")


def bundled_pairs(sources: tuple[str, ...] = BUNDLED_SOURCES, min_sts_score: float = 4.0) -> Iterator[Pair]:
    readers = {
        "parakqc": parakqc_pairs,
        "korsts": lambda: korsts_pairs(min_sts_score),
        "kornli": kornli_pairs,
        "question_pair": question_pairs,
    }
    for source in sources:
        if source not in readers:
            raise DataError(f"--source {source!r}: unknown (bundled sources: {', '.join(readers)})")
        yield from readers[source]()


def user_pairs(location: str) -> Iterator[Pair]:
    """``{source, target}`` pairs from a .jsonl or .csv file, or a Hugging Face dataset id (train split)."""
    path = Path(location)
    origin = path.name if path.exists() else location
    if path.suffix == ".jsonl":
        for record in read_jsonl(path, required=("source", "target")):
            yield Pair(record["source"].strip(), record["target"].strip(), origin)
    elif path.suffix == ".csv":
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        with path.open(encoding="utf-8-sig") as rows:
            reader = csv.DictReader(rows)
            if not {"source", "target"} <= set(reader.fieldnames or []):
                raise DataError(f"{path}: needs columns source and target (has {reader.fieldnames})")
            for number, row in enumerate(reader, start=2):
                if not row["source"].strip() or not row["target"].strip():
                    raise DataError(f"{path}:{number}: empty source or target")
                yield Pair(row["source"].strip(), row["target"].strip(), origin)
    elif path.exists():
        raise DataError(f"--pairs {path}: expected a .jsonl or .csv file")
    else:
        from ko_sparse.data.hub import load_hub_rows

        for row in load_hub_rows(location, columns=("source", "target")):
            yield Pair(row["source"].strip(), row["target"].strip(), origin)
