"""The BEIR folder layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and the judgements in ``qrels/test.tsv`` or ``qrels.tsv``."""

from __future__ import annotations

from pathlib import Path

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_FILES = ("qrels/test.tsv", "qrels.tsv")
ID_FIELD, TITLE_FIELD, TEXT_FIELD = "_id", "title", "text"


def is_beir_folder(path: str | Path) -> bool:
    return (Path(path) / CORPUS_FILE).is_file()


def qrels_file(folder: Path) -> Path | None:
    return next((folder / name for name in QRELS_FILES if (folder / name).is_file()), None)


def passage(title: str | None, text: str) -> str:
    """What is searched: the title, when there is one, before the text (as BEIR evaluations do)."""
    return f"{title or ''} {text}".strip()
