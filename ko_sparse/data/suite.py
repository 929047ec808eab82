"""The Korean retrieval suite: the retrieval tasks of MTEB's Korean benchmark, each pinned as MTEB pins it.

Every set records the Hub dataset id, the revision, the split and how corpus, queries and judgements are read,
copied from the task definitions of the ``mteb`` package (2.26.24: ``mteb/tasks/retrieval/kor/*.py`` and
``mteb/tasks/retrieval/multilingual/*.py``; the list is ``MTEB(kor, v2)``'s retrieval tasks in
``mteb/benchmarks/benchmarks/benchmarks.py``). ``mteb`` itself is not a dependency: it pulls in its own
model runners and evaluators, while here the sets feed ``ko-sparse bench``'s systems. Loading is
``datasets.load_dataset`` with the pinned revision, so a set already in the ``datasets`` cache loads offline
(``HF_DATASETS_OFFLINE=1``) by the same code that downloads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ko_sparse.data.beir import passage
from ko_sparse.data.retrieval_sets import RetrievalSet, UnknownSetError
from ko_sparse.errors import DataError

MTEB_SOURCE = "mteb 2.26.24 task definitions (MTEB(kor, v2) retrieval tasks)"


@dataclass(frozen=True)
class SuiteSet:
    """One pinned set. ``subset``: the language prefix of the dataset's configs (``ko`` -> ``ko-corpus``,
    ``ko-queries``, ``ko-qrels``), None for ``corpus``/``queries``/``default``. ``layout``: ``beir`` (MTEB's
    retrieval layout), ``qa`` (question/answer rows, PublicHealthQA) or ``belebele`` (question/passage rows)."""

    name: str
    path: str
    revision: str
    split: str
    licence: str
    reference: str
    subset: str | None = None
    layout: str = "beir"

    @property
    def pinned(self) -> str:
        config = f", subset {self.subset}" if self.subset else ""
        return f"{self.path}@{self.revision} (split {self.split}{config}, {self.layout} layout)"

    def config(self, part: str) -> str:
        """The dataset config of ``part`` (corpus, queries or qrels), named as MTEB's loader names it."""
        if self.subset:
            return f"{self.subset}-{part}"
        return "default" if part == "qrels" else part

    def load(self) -> RetrievalSet:
        try:
            corpus, queries, qrels = READERS[self.layout](self)
        except KeyError as error:
            raise DataError(
                f"{self.name}: {self.path}@{self.revision[:12]} has no column {error} that its {self.layout} layout "
                "reads; the dataset changed shape, so pin the revision MTEB evaluates"
            ) from error
        return RetrievalSet(
            self.name,
            corpus,
            queries,
            qrels,
            f"MTEB {self.name}: {self.pinned}",
            self.licence,
            [f"pinned as in {MTEB_SOURCE}; reference {self.reference}"],
        )


def load_split(dataset: SuiteSet, config: str | None, split: str | None = None):
    """One split of one config at the pinned revision. As MTEB's loader: the set's split if the config has
    it, else the config's only split (MTEB stores a corpus under ``corpus`` or ``train``)."""
    from datasets import load_dataset

    try:
        splits = load_dataset(dataset.path, config, revision=dataset.revision)
    except Exception as error:  # datasets raises many types when the Hub is unreachable or a config is absent
        raise DataError(
            f"{dataset.name}: {dataset.path} config {config!r} at revision {dataset.revision[:12]} could not be "
            f"loaded ({error.__class__.__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            "check the network (or HF_DATASETS_OFFLINE with a filled cache) and run again"
        ) from error
    wanted = split or dataset.split
    if wanted in splits:
        return splits[wanted]
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise DataError(f"{dataset.name}: {dataset.path} config {config!r} has no split {wanted!r} ({list(splits)})")


def read_beir(dataset: SuiteSet) -> tuple[dict, dict, dict]:
    """MTEB's retrieval layout: corpus rows ``_id``/``title``/``text``, query rows ``_id``/``text``, judgement
    rows ``query-id``/``corpus-id``/``score``."""
    corpus = {str(r["_id"]): passage(r.get("title"), r["text"]) for r in load_split(dataset, dataset.config("corpus"))}
    queries = {str(r["_id"]): r["text"] for r in load_split(dataset, dataset.config("queries"))}
    qrels: dict[str, dict[str, int]] = {}
    for r in load_split(dataset, dataset.config("qrels")):
        qrels.setdefault(str(r["query-id"]), {})[str(r["corpus-id"])] = int(r["score"])
    return corpus, queries, qrels


def read_qa(dataset: SuiteSet) -> tuple[dict, dict, dict]:
    """PublicHealthQA: one row per question/answer pair; ids are the order of first appearance (``Q0``, ``D0``),
    rows missing either side are skipped (as MTEB's ``_load_publichealthqa_data``)."""
    corpus, queries, qrels, question_ids, answer_ids = {}, {}, {}, {}, {}
    for row in load_split(dataset, dataset.subset):
        if row["question"] is None or row["answer"] is None:
            continue
        qid = f"Q{question_ids.setdefault(row['question'], len(question_ids))}"
        doc_id = f"D{answer_ids.setdefault(row['answer'], len(answer_ids))}"
        queries[qid], corpus[doc_id] = row["question"], row["answer"]
        qrels.setdefault(qid, {})[doc_id] = 1
    return corpus, queries, qrels


def read_belebele(dataset: SuiteSet) -> tuple[dict, dict, dict]:
    """Belebele: each question's passage (``flores_passage``, one per ``link``) is its relevant document (as
    MTEB's ``BelebeleRetrieval.load_data``, Korean questions against Korean passages)."""
    corpus, queries, qrels, question_ids, passage_ids = {}, {}, {}, {}, {}
    for row in load_split(dataset, dataset.subset):
        doc_id = passage_ids.setdefault(row["link"], f"C{len(passage_ids)}")
        corpus.setdefault(doc_id, row["flores_passage"])
        qid = f"Q{question_ids.setdefault(row['question'], len(question_ids))}"
        queries[qid] = row["question"]
        qrels.setdefault(qid, {})[doc_id] = 1
    return corpus, queries, qrels


READERS: dict[str, Callable[[SuiteSet], tuple[dict, dict, dict]]] = {
    "beir": read_beir,
    "qa": read_qa,
    "belebele": read_belebele,
}

KO_RETRIEVAL = (
    SuiteSet(
        "Ko-StrategyQA",
        "taeminlee/Ko-StrategyQA",
        "d243889a3eb6654029dbd7e7f9319ae31d58f97c",
        "dev",
        "cc-by-4.0",
        "https://arxiv.org/abs/2101.02235",
    ),
    SuiteSet(
        "AutoRAGRetrieval",
        "yjoonjang/markers_bm",
        "fd7df84ac089bbec763b1c6bb1b56e985df5cc5c",
        "test",
        "mit",
        "https://arxiv.org/abs/2410.20878",
    ),
    SuiteSet(
        "MIRACLRetrieval",
        "mteb/MIRACLRetrieval",
        "9c09abc13478308c27598f350e31d8f06b9b5481",
        "dev",
        "cc-by-sa-4.0",
        "http://miracl.ai",
        subset="ko",
    ),
    SuiteSet(
        "MrTidyRetrieval",
        "mteb/mrtidy",
        "fc24a3ce8f09746410daee3d5cd823ff7a0675b7",
        "test",
        "cc-by-sa-3.0",
        "https://huggingface.co/datasets/castorini/mr-tydi",
        subset="korean",
    ),
    SuiteSet(
        "PublicHealthQA",
        "xhluca/publichealth-qa",
        "main",  # MTEB pins no commit for this set
        "test",
        "cc-by-nc-sa-3.0",
        "https://huggingface.co/datasets/xhluca/publichealth-qa",
        subset="korean",
        layout="qa",
    ),
    SuiteSet(
        "BelebeleRetrieval",
        "mteb/belebele",
        "979a211276faa22f671e69d096634193567cfd05",
        "test",
        "cc-by-sa-4.0",
        "https://arxiv.org/abs/2308.16884",
        subset="kor_Hang",
        layout="belebele",
    ),
    SuiteSet(
        "MultiLongDocRetrieval",
        "mteb/MultiLongDocRetrieval",
        "837028901907a7d419b4ab906f28e011ce1cc824",
        "test",
        "mit",
        "https://arxiv.org/abs/2402.03216",
        subset="ko",
    ),
    SuiteSet(
        "XPQARetrieval",
        "mteb/XPQARetrieval",
        "fc4624be978945a0ceebbc4b85737258fe26330b",
        "test",
        "cdla-sharing-1.0",
        "https://arxiv.org/abs/2305.09249",
        subset="kor-kor",
    ),
    SuiteSet(
        "LawIRKo",
        "on-and-on/lawgov_ir-ko",
        "bd5361e486ef4be7052c506adfdf0610d04abbfe",
        "test",
        "mit",
        "https://huggingface.co/datasets/on-and-on/lawgov_ir-ko",
    ),
    SuiteSet(
        "SQuADKorV1Retrieval",
        "yjoonjang/squad_kor_v1",
        "2b4ee1f3b143a04792da93a3df21933c5fe9eed3",
        "test",
        "cc-by-sa-4.0",
        "https://huggingface.co/datasets/yjoonjang/squad_kor_v1",
    ),
)

SUITES: dict[str, tuple[SuiteSet, ...]] = {"ko-retrieval": KO_RETRIEVAL}


def suite_sets(spec: str) -> list[SuiteSet]:
    """``ko-retrieval`` (every set) or ``ko-retrieval:Ko-StrategyQA,AutoRAGRetrieval`` (those, in that order)."""
    name, _, chosen = spec.partition(":")
    if name not in SUITES:
        raise UnknownSetError(f"--suite {name!r}: unknown suite; available: {', '.join(SUITES)}")
    by_name = {dataset.name.lower(): dataset for dataset in SUITES[name]}
    wanted = [part.strip() for part in chosen.split(",") if part.strip()]
    unknown = [part for part in wanted if part.lower() not in by_name]
    if unknown:
        raise UnknownSetError(
            f"--suite {spec!r}: no set {', '.join(unknown)} in {name}; "
            f"its sets: {', '.join(d.name for d in SUITES[name])}"
        )
    return [by_name[part.lower()] for part in wanted] if wanted else list(SUITES[name])
