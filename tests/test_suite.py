"""bench --suite: pinned MTEB sets read through the datasets cache, a failed set reported, one table, and the
paired tests of every two systems."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import datasets
import numpy as np
import pytest
from click.testing import CliRunner
from datasets.arrow_writer import ArrowWriter
from datasets.naming import camelcase_to_snakecase
from scipy import stats

from ko_sparse.bench.report import write_report
from ko_sparse.bench.runner import run_benchmark
from ko_sparse.bench.significance import compare, pairwise, randomisation_p
from ko_sparse.bench.systems import EmbeddedBM25
from ko_sparse.cli.main import cli
from ko_sparse.data.retrieval_sets import UnknownSetError
from ko_sparse.data.suite import KO_RETRIEVAL, SuiteSet, suite_sets
from ko_sparse.errors import DataError

BY_NAME = {dataset.name: dataset for dataset in KO_RETRIEVAL}
CORPUS = [
    {"_id": "d1", "title": "당뇨병", "text": "당뇨병 환자는 혈당을 꾸준히 관리해야 한다."},
    {"_id": "d2", "title": "", "text": "고혈압 약은 매일 같은 시간에 먹는다."},
    {"_id": "d3", "title": "", "text": "감기에 걸리면 충분히 쉬어야 한다."},
    {"_id": "d4", "title": "", "text": "당뇨병에 좋은 음식은 채소와 통곡물이다."},
    {"_id": "d5", "title": "", "text": "서울에서 부산까지 기차로 두 시간 반이 걸린다."},
]
QUERIES = [
    {"_id": "q1", "text": "당뇨병에 좋은 음식"},
    {"_id": "q2", "text": "고혈압 약 복용 시간"},
    {"_id": "q3", "text": "부산 가는 기차"},
]
QRELS = [
    {"query-id": "q1", "corpus-id": "d4", "score": 1},
    {"query-id": "q2", "corpus-id": "d2", "score": 1},
    {"query-id": "q3", "corpus-id": "d5", "score": 1},
]


def write_cached(root: Path, repo: str, config: str, split: str, rows: list[dict]) -> None:
    """One config's split as ``datasets`` caches a download: ``owner___name/config/version/hash/`` with the
    Arrow file and dataset_info.json, which offline ``load_dataset(repo, config)`` falls back to."""
    owner, name = repo.split("/")
    folder = root / f"{owner}___{camelcase_to_snakecase(name)}" / config / "0.0.0" / "fixture"
    folder.mkdir(parents=True, exist_ok=True)
    table = datasets.Dataset.from_list(rows)
    with ArrowWriter(path=str(folder / f"{camelcase_to_snakecase(name)}-{split}.arrow"), features=table.features) as w:
        w.write_table(table.data.table)
        examples, size = w.finalize()
    splits = datasets.SplitDict({split: datasets.SplitInfo(split, num_bytes=size, num_examples=examples)})
    info = datasets.DatasetInfo(features=table.features, config_name=config, dataset_name=name, splits=splits)
    info.write_to_directory(str(folder))


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty datasets cache with the Hub offline: only what a test writes there loads."""
    root = tmp_path / "datasets-cache"
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", root)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return root


def write_beir_set(root: Path, dataset: SuiteSet, corpus_split: str = "corpus", queries: bool = True) -> None:
    write_cached(root, dataset.path, dataset.config("corpus"), corpus_split, CORPUS)
    if queries:
        write_cached(root, dataset.path, dataset.config("queries"), "queries", QUERIES)
    write_cached(root, dataset.path, dataset.config("qrels"), dataset.split, QRELS)


def test_the_suite_is_mtebs_korean_retrieval_tasks_pinned():
    assert [d.name for d in suite_sets("ko-retrieval")][:3] == ["Ko-StrategyQA", "AutoRAGRetrieval", "MIRACLRetrieval"]
    assert BY_NAME["Ko-StrategyQA"].revision == "d243889a3eb6654029dbd7e7f9319ae31d58f97c"
    assert BY_NAME["MIRACLRetrieval"].config("corpus") == "ko-corpus"
    assert BY_NAME["Ko-StrategyQA"].config("qrels") == "default"
    chosen = suite_sets("ko-retrieval:autoragretrieval, Ko-StrategyQA")
    assert [d.name for d in chosen] == ["AutoRAGRetrieval", "Ko-StrategyQA"]
    with pytest.raises(UnknownSetError, match="no set Nope in ko-retrieval; its sets: Ko-StrategyQA"):
        suite_sets("ko-retrieval:Nope")
    with pytest.raises(UnknownSetError, match="unknown suite; available: ko-retrieval"):
        suite_sets("en-retrieval")


def test_a_pinned_set_loads_from_the_datasets_cache(hub_cache: Path):
    dataset = BY_NAME["Ko-StrategyQA"]
    write_beir_set(hub_cache, dataset)
    loaded = dataset.load()
    assert loaded.corpus["d1"] == "당뇨병 당뇨병 환자는 혈당을 꾸준히 관리해야 한다."
    assert loaded.queries == {"q1": "당뇨병에 좋은 음식", "q2": "고혈압 약 복용 시간", "q3": "부산 가는 기차"}
    assert loaded.qrels == {"q1": {"d4": 1}, "q2": {"d2": 1}, "q3": {"d5": 1}}
    assert "d243889a3eb6" in loaded.description


def test_a_subset_set_reads_its_configs_and_a_corpus_stored_under_its_only_split(hub_cache: Path):
    dataset = BY_NAME["MIRACLRetrieval"]
    write_beir_set(hub_cache, dataset, corpus_split="train")
    loaded = dataset.load()
    assert len(loaded.corpus) == 5 and set(loaded.qrels) == {"q1", "q2", "q3"}


def test_a_set_missing_a_config_says_which_and_how_to_fix_it(hub_cache: Path):
    dataset = BY_NAME["AutoRAGRetrieval"]
    write_beir_set(hub_cache, dataset, queries=False)
    with pytest.raises(DataError, match=r"AutoRAGRetrieval: yjoonjang/markers_bm config 'queries' at revision fd7df"):
        dataset.load()


def test_question_answer_and_belebele_layouts_number_ids_as_mteb(hub_cache: Path):
    health = BY_NAME["PublicHealthQA"]
    rows = [
        {"question": "독감 증상은?", "answer": "열과 기침"},
        {"question": "독감 예방은?", "answer": "백신 접종"},
        {"question": "빈 답", "answer": None},
        {"question": "독감 증상은?", "answer": "근육통"},
    ]
    write_cached(hub_cache, health.path, "korean", "test", rows)
    loaded = health.load()
    assert loaded.queries == {"Q0": "독감 증상은?", "Q1": "독감 예방은?"}
    assert loaded.corpus == {"D0": "열과 기침", "D1": "백신 접종", "D2": "근육통"}
    assert loaded.qrels == {"Q0": {"D0": 1, "D2": 1}, "Q1": {"D1": 1}}
    belebele = BY_NAME["BelebeleRetrieval"]
    rows = [
        {"link": "a", "flores_passage": "서울은 수도다.", "question": "수도는?"},
        {"link": "a", "flores_passage": "서울은 수도다.", "question": "서울은?"},
        {"link": "b", "flores_passage": "부산은 항구다.", "question": "항구는?"},
    ]
    write_cached(hub_cache, belebele.path, "kor_Hang", "test", rows)
    loaded = belebele.load()
    assert loaded.corpus == {"C0": "서울은 수도다.", "C1": "부산은 항구다."}
    assert loaded.qrels == {"Q0": {"C0": 1}, "Q1": {"C0": 1}, "Q2": {"C1": 1}}


def test_suite_runs_every_set_reports_the_failed_one_and_matches_the_per_set_run(
    hub_cache: Path, tmp_path: Path, saved_model: Path
):
    write_beir_set(hub_cache, BY_NAME["Ko-StrategyQA"])
    write_beir_set(hub_cache, BY_NAME["AutoRAGRetrieval"], queries=False)  # the download stopped mid-way
    output = tmp_path / "suite"
    arguments = ["bench", "--suite", "ko-retrieval:AutoRAGRetrieval,Ko-StrategyQA", "--model", str(saved_model)]
    result = CliRunner().invoke(cli, [*arguments, "--output", str(output)])
    assert result.exit_code == 0, result.output
    report = json.loads((output / "suite.json").read_text(encoding="utf-8"))
    failed, ran = report["sets"]
    assert failed["name"] == "AutoRAGRetrieval" and "config 'queries'" in failed["error"] and not failed["systems"]
    assert ran["error"] is None and ran["pinned"]["revision"] == BY_NAME["Ko-StrategyQA"].revision
    alone = {r.name: r.metrics for r in run_benchmark(BY_NAME["Ko-StrategyQA"].load(), [EmbeddedBM25()], False)}
    bm25 = next(s for s in ran["systems"] if s["name"] == "bm25")
    assert bm25["metrics"] == {m: alone["bm25"][m] for m in ("ndcg@10", "recall@100", "mrr@10")}
    names = [s["name"] for s in ran["systems"]]
    assert names == ["bm25", "sparse[tiny]", "hybrid[tiny]"]
    assert report["averages"]["bm25"] == bm25["metrics"]  # the failed set is left out of the average
    assert {(c["first"], c["second"]) for c in ran["comparisons"]} == set(itertools.combinations(names, 2))
    markdown = (output / "suite.md").read_text(encoding="utf-8")
    assert "1 of 2 sets ran" in markdown and "## Failed sets" in markdown and "config 'queries'" in markdown
    assert "| index MB | p50 ms | docs/s |" in markdown
    page = (output / "suite.html").read_text(encoding="utf-8")
    assert all(name in page for name in names) and "BAAI/bge-m3 (dense), published" in page
    assert "embeddings-benchmark/results" in page
    assert (output / "Ko-StrategyQA" / "report.html").is_file()


def test_the_paired_tests_are_scipys_and_the_randomisation_is_exact_on_few_queries():
    first = {f"q{i}": v for i, v in enumerate([1.0, 0.5, 0.8, 0.0, 1.0, 0.3, 0.9, 0.6])}
    second = {f"q{i}": v for i, v in enumerate([0.5, 0.5, 0.2, 0.1, 0.4, 0.3, 0.1, 0.7])}
    result = compare("a", "b", first, second)
    ours, theirs = (np.array([s[q] for q in sorted(first)]) for s in (first, second))
    assert result.t_test_p == pytest.approx(stats.ttest_rel(ours, theirs).pvalue)
    differences = ours - theirs
    flips = [np.mean(differences * np.array(signs)) for signs in itertools.product((1, -1), repeat=8)]
    exact = np.mean([abs(f) >= abs(differences.mean()) - 1e-12 for f in flips])
    assert result.randomisation_p == pytest.approx(exact)
    assert (result.wins, result.losses, result.ties) == (4, 2, 2)
    assert result.mean_difference == pytest.approx(differences.mean())
    same = compare("a", "a", first, first)
    assert math.isnan(same.t_test_p) and math.isnan(same.randomisation_p) and same.ties == 8
    assert [(c.first, c.second) for c in pairwise({"x": first, "y": second, "z": first})] == [
        ("x", "y"),
        ("x", "z"),
        ("y", "z"),
    ]


@pytest.mark.parametrize("queries", [8, 13, 300])
def test_the_randomisation_test_counts_as_scipys_permutation_test(queries: int):
    """Exact (2^queries <= 10,000 sign flips) it equals SciPy's exact test; sampled, it is within sampling error."""
    differences = np.round(np.random.default_rng(queries).normal(0.05, 0.3, queries), 2)
    scipys = stats.permutation_test(
        (differences,),
        lambda x, axis=-1: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=10_000,
        random_state=0,
    ).pvalue
    ours = randomisation_p(differences)
    assert ours == pytest.approx(scipys) if queries <= 13 else abs(ours - scipys) < 0.02


def test_the_single_set_report_shows_every_pair_and_the_cost_columns(tmp_path: Path):
    from tests.test_bench import SMALL

    results = run_benchmark(SMALL, [EmbeddedBM25()], hybrid=False)
    other = run_benchmark(SMALL, [EmbeddedBM25()], hybrid=False)[0]
    other.name = "bm25-again"
    write_report(tmp_path, SMALL, [*results, other], {})
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<th>index MB</th><th>docs/s</th>" in page and "<th>randomisation p</th>" in page
    same = "<td>+0.0000</td><td>–</td><td>–</td><td>0</td><td>0</td><td>3</td>"
    assert f"<tr><td>bm25</td><td>bm25-again</td>{same}" in page
    assert "| bm25 | bm25-again | +0.0000 | – | – | 0 | 0 | 3 |" in (tmp_path / "report.md").read_text(encoding="utf-8")
    (comparison,) = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["comparisons"]
    assert (comparison["first"], comparison["second"], comparison["ties"]) == ("bm25", "bm25-again", 3)


def test_a_set_of_another_shape_names_the_missing_column(hub_cache: Path):
    dataset = BY_NAME["LawIRKo"]
    write_cached(hub_cache, dataset.path, "corpus", "corpus", [{"id": "d1", "text": "법"}])
    with pytest.raises(DataError, match=r"LawIRKo: on-and-on/lawgov_ir-ko@bd5361e486ef has no column '_id'"):
        dataset.load()


def test_a_suite_where_no_set_loads_writes_its_report_and_fails(hub_cache: Path, tmp_path: Path):
    output = tmp_path / "suite"
    arguments = ["bench", "--suite", "ko-retrieval:LawIRKo", "--systems", "bm25", "--output", str(output)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2  # a DataError, as when --index cannot load its set
    assert "--suite ko-retrieval:LawIRKo: none of its 1 sets ran" in result.output
    report = json.loads((output / "suite.json").read_text(encoding="utf-8"))
    assert "LawIRKo: on-and-on/lawgov_ir-ko config 'corpus'" in report["sets"][0]["error"]


def test_bench_list_names_the_suite_and_its_sets():
    result = CliRunner().invoke(cli, ["bench", "--list"])
    assert result.exit_code == 0
    assert "Suite (--suite ko-retrieval, from the Hub): Ko-StrategyQA, AutoRAGRetrieval, MIRACL" in result.output
