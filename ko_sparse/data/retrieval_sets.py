"""Korean retrieval test sets: bundled ones by name, BEIR folders, and Hugging Face datasets.

Every set is a corpus ``{docid: text}``, queries ``{qid: text}`` and graded judgements
``{qid: {docid: grade}}`` (grade 0 = judged non-relevant).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ko_sparse.data.beir import CORPUS_FILE, ID_FIELD, QUERIES_FILE, TEXT_FIELD, passage, qrels_file
from ko_sparse.data.jsonl import read_jsonl, write_jsonl
from ko_sparse.errors import DataError
from ko_sparse.resources import RETRIEVAL_DIR

MIRACL = RETRIEVAL_DIR / "miracl-ko-dev-judged"
ALLGANIZE = RETRIEVAL_DIR / "allganize-rag-eval-ko" / "allganize_rag_eval.json"
AUTORAG = RETRIEVAL_DIR / "autorag-ko" / "autorag_retrieval.json"
PERTURBED_PREFIX = "miracl-ko-perturbed:"
PERTURBATIONS = ("josa", "jamo", "spacing", "homonym", "compound", "koen")
KORMEDMCQA_CONFIGS = ("doctor", "nurse", "pharm", "dentist")
ANSWER_RETRIEVAL_NOTE = (
    "Answer retrieval: each query's relevant document is its own reference answer, which repeats the "
    "question's words, so a good Korean BM25 is near-saturated here; miracl-ko and miracl-ko-perturbed "
    "discriminate better."
)


class UnknownSetError(DataError):
    """A benchmark name that is neither bundled, a BEIR folder, nor a dataset id."""


@dataclass
class RetrievalSet:
    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    description: str
    licence: str
    notes: list[str] = field(default_factory=list)
    clean_queries: dict[str, str] = field(default_factory=dict)  # perturbed sets: the original wording

    def __post_init__(self) -> None:
        """Only queries with at least one relevant judgement are scored."""
        judged = {qid for qid, judged in self.qrels.items() if any(grade > 0 for grade in judged.values())}
        self.queries = {qid: text for qid, text in self.queries.items() if qid in judged}
        self.clean_queries = {qid: text for qid, text in self.clean_queries.items() if qid in self.queries}

    def with_clean_queries(self) -> RetrievalSet:
        """The same set asked with the unperturbed queries."""
        return replace(self, queries=self.clean_queries, clean_queries={})

    def summary(self) -> str:
        return f"{len(self.queries)} queries, {len(self.corpus):,} documents"

    def missing_relevant_documents(self) -> list[str]:
        """Relevant documents of the scored queries that the corpus lacks (sorted): no system can find them."""
        judged = {doc_id for qid in self.queries for doc_id, grade in self.qrels[qid].items() if grade > 0}
        return sorted(judged - self.corpus.keys())


@dataclass(frozen=True)
class SetInfo:
    name: str
    description: str
    licence: str
    build: Callable[[], RetrievalSet]
    offline: bool = True


def _miracl_corpus() -> dict[str, str]:
    return {r["docid"]: passage(r["title"], r["text"]) for r in read_jsonl(MIRACL / "corpus.jsonl")}


def _miracl_qrels() -> dict[str, dict[str, int]]:
    return _read_qrels(MIRACL / "qrels.tsv", header=False)


def miracl(queries_file: Path = MIRACL / "queries_clean.jsonl", name: str = "miracl-ko") -> RetrievalSet:
    queries = {r["qid"]: r["text"] for r in read_jsonl(queries_file, required=("qid", "text"))}
    return RetrievalSet(
        name,
        _miracl_corpus(),
        queries,
        _miracl_qrels(),
        "MIRACL Korean dev: Wikipedia questions against their 2,835 judged passages (positives and judged hard "
        "negatives only, so scores run higher than on the full 1.5M-passage corpus)",
        "Apache-2.0 (MIRACL); passages CC BY-SA (Wikipedia)",
    )


def miracl_perturbed(kind: str) -> RetrievalSet:
    if kind not in PERTURBATIONS:
        raise UnknownSetError(f"{PERTURBED_PREFIX}{kind}: unknown perturbation (available: {', '.join(PERTURBATIONS)})")
    dataset = miracl(MIRACL / "perturbations" / f"{kind}.jsonl", f"{PERTURBED_PREFIX}{kind}")
    clean = miracl().queries
    return replace(
        dataset,
        description=f"miracl-ko with the queries rewritten by the '{kind}' perturbation",
        clean_queries={qid: clean[qid] for qid in dataset.queries if qid in clean},
        notes=[f"the drop is measured against the same {len(dataset.queries)} queries in their clean wording"],
    )


def _load_json_set(path: Path) -> tuple[dict, dict, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    corpus = {doc_id: passage(doc["title"], doc["text"]) for doc_id, doc in data["corpus"].items()}
    return corpus, data["queries"], {qid: dict(judged) for qid, judged in data["qrels"].items()}


def allganize() -> RetrievalSet:
    corpus, queries, qrels = _load_json_set(ALLGANIZE)
    return RetrievalSet(
        "allganize-ko",
        corpus,
        queries,
        qrels,
        "Allganize RAG-Eval-KO: 300 questions in five domains (finance, public, medical, law, commerce) against "
        "their 300 reference answers",
        "MIT (allganize/RAG-Evaluation-Dataset-KO)",
        [ANSWER_RETRIEVAL_NOTE],
    )


def autorag() -> RetrievalSet:
    corpus, queries, qrels = _load_json_set(AUTORAG)
    return RetrievalSet(
        "autorag-ko",
        corpus,
        queries,
        qrels,
        "AutoRAG Korean retrieval: 114 questions against 720 PDF-page passages (law, public, commerce, finance)",
        "MIT (allganize, via MTEB AutoRAGRetrieval)",
    )


def medical() -> RetrievalSet:
    """The 60 medical Allganize questions against 1,020 documents.

    Corpus: all 300 Allganize reference answers (the 60 medical ones are the relevant documents; the 240
    of the other four domains are distractors in the same style) plus the 720 AutoRAG PDF-page passages
    (law, public, commerce, finance: no medical page, so no unjudged relevant document).
    """
    corpus, queries, qrels = _load_json_set(ALLGANIZE)
    medical_docs = {doc_id for doc_id, text in corpus.items() if text.startswith("[medical]")}
    medical_queries = {q: t for q, t in queries.items() if set(qrels[q]) & medical_docs}
    autorag_corpus, _, _ = _load_json_set(AUTORAG)
    corpus.update({f"autorag:{doc_id}": text for doc_id, text in autorag_corpus.items()})
    return RetrievalSet(
        "medical",
        corpus,
        medical_queries,
        {q: qrels[q] for q in medical_queries},
        "Allganize RAG-Eval-KO's 60 medical questions against 1,020 documents: the 300 Allganize reference "
        "answers (60 medical relevant, 240 other-domain distractors) and the 720 AutoRAG passages "
        "(law, public, commerce, finance)",
        "MIT (allganize)",
        [ANSWER_RETRIEVAL_NOTE],
    )


def kormedmcqa() -> RetrievalSet:  # pragma: no cover - needs the Hugging Face Hub
    """KorMedMCQA (doctor, nurse, pharm, dentist) as answer selection: each exam question against every
    answer option of every question; the relevant document is the question's correct option."""
    from datasets import load_dataset

    corpus, queries, qrels = {}, {}, {}
    for config in KORMEDMCQA_CONFIGS:
        split = _hub(
            lambda config=config: load_dataset("sean0042/KorMedMCQA", config, split="test"), "sean0042/KorMedMCQA"
        )
        for number, row in enumerate(split):
            qid = f"{config}-{number}"
            queries[qid] = row["question"]
            for option in "ABCDE":
                if row.get(option):
                    corpus[f"{qid}-{option}"] = str(row[option])
            qrels[qid] = {f"{qid}-{'ABCDE'[int(row['answer']) - 1]}": 1}
    return RetrievalSet(
        "kormedmcqa",
        corpus,
        queries,
        qrels,
        "KorMedMCQA (Korean medical licensing exams: doctor, nurse, pharm, dentist) as answer retrieval",
        "CC BY-NC 2.0 (non-commercial)",
        [ANSWER_RETRIEVAL_NOTE],
    )


REGISTRY: dict[str, SetInfo] = {
    info.name: info
    for info in [
        SetInfo("medical", medical.__doc__.splitlines()[0], "MIT", medical),
        SetInfo("miracl-ko", "MIRACL Korean dev, judged passages", "Apache-2.0 / CC BY-SA", miracl),
        SetInfo("autorag-ko", "AutoRAG Korean retrieval (MTEB)", "MIT", autorag),
        SetInfo("allganize-ko", "Allganize RAG-Eval-KO, all five domains", "MIT", allganize),
        SetInfo(
            "kormedmcqa",
            "KorMedMCQA exams as answer retrieval (needs the Hub)",
            "CC BY-NC 2.0",
            kormedmcqa,
            offline=False,
        ),
    ]
}


def available() -> list[str]:
    return [*REGISTRY, *(f"{PERTURBED_PREFIX}{kind}" for kind in PERTURBATIONS)]


def load_set(name: str) -> RetrievalSet:
    """A bundled set by name, a BEIR folder by path, or a Hugging Face dataset id (MTEB layout)."""
    if name in REGISTRY:
        return REGISTRY[name].build()
    if name.startswith(PERTURBED_PREFIX):
        return miracl_perturbed(name.removeprefix(PERTURBED_PREFIX))
    if Path(name).is_dir():
        return load_beir(Path(name))
    if name.count("/") == 1 and not Path(name).exists():
        return load_hf(name)
    raise UnknownSetError(
        f"--index {name!r}: unknown benchmark set; available: {', '.join(available())}, "
        "a BEIR folder or a Hugging Face dataset id"
    )


def load_beir(folder: Path) -> RetrievalSet:
    """A BEIR folder (layout in :mod:`ko_sparse.data.beir`)."""
    corpus = {
        r[ID_FIELD]: passage(r.get("title"), r[TEXT_FIELD])
        for r in read_jsonl(folder / CORPUS_FILE, required=(ID_FIELD, TEXT_FIELD))
    }
    queries = {r[ID_FIELD]: r[TEXT_FIELD] for r in read_jsonl(folder / QUERIES_FILE, required=(ID_FIELD, TEXT_FIELD))}
    judgements = qrels_file(folder)
    if judgements is None:
        raise DataError(f"{folder}: no qrels/test.tsv or qrels.tsv")
    return RetrievalSet(
        folder.name, corpus, queries, _read_qrels(judgements, header=True), f"BEIR folder {folder}", "?"
    )


def write_beir(folder: Path, dataset: RetrievalSet) -> Path:
    """Write ``dataset`` as a BEIR folder that :func:`load_beir` reads back (titles folded into the text)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / CORPUS_FILE, [{ID_FIELD: d, "title": "", TEXT_FIELD: t} for d, t in dataset.corpus.items()])
    write_jsonl(folder / QUERIES_FILE, [{ID_FIELD: q, TEXT_FIELD: t} for q, t in dataset.queries.items()])
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"{qid}\t{docid}\t{grade}" for qid in dataset.queries for docid, grade in dataset.qrels.get(qid, {}).items()
    ]
    (folder / "qrels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _read_qrels(path: Path, header: bool) -> dict[str, dict[str, int]]:
    """TREC (qid 0 docid grade) or BEIR (query-id corpus-id score, with a header) judgements."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as rows:
        for number, row in enumerate(csv.reader(rows, delimiter="\t"), start=1):
            if not row or (header and number == 1 and not row[-1].lstrip("-").isdigit()):
                continue
            if len(row) not in (3, 4) or not row[-1].lstrip("-").isdigit():
                raise DataError(f"{path}:{number}: expected 'query-id corpus-id score' (or TREC 4 columns), got {row}")
            qid, docid = row[0], row[-2]
            qrels.setdefault(qid, {})[docid] = int(row[-1])
    return qrels


def _hub(load: Callable, dataset_id: str):
    try:
        return load()
    except Exception as error:  # datasets raises many types when the Hub is unreachable
        raise DataError(
            f"Hugging Face dataset {dataset_id!r} could not be loaded ({error.__class__.__name__}: {error})"
        ) from error


def load_hf(dataset_id: str) -> RetrievalSet:
    """An MTEB-style dataset: configs ``corpus`` and ``queries``, judgements in ``default`` (test split)."""
    from datasets import load_dataset

    corpus_rows = _hub(lambda: load_dataset(dataset_id, "corpus", split="corpus"), dataset_id)
    query_rows = _hub(lambda: load_dataset(dataset_id, "queries", split="queries"), dataset_id)
    qrel_rows = _hub(lambda: load_dataset(dataset_id, "default", split="test"), dataset_id)
    corpus = {r["_id"]: passage(r.get("title"), r["text"]) for r in corpus_rows}
    qrels: dict[str, dict[str, int]] = {}
    for r in qrel_rows:
        qrels.setdefault(str(r["query-id"]), {})[str(r["corpus-id"])] = int(r["score"])
    queries = {str(r["_id"]): r["text"] for r in query_rows}
    return RetrievalSet(
        dataset_id, corpus, queries, qrels, f"Hugging Face dataset {dataset_id}", "see the dataset card"
    )
