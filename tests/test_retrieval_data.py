"""ko-sparse data build --retrieval: query splits, hard negatives that are never positives, the held-out
evaluation folder, and teacher scores computed once and resumed after an interruption."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from datasets import load_from_disk
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from ko_sparse.cli.main import cli
from ko_sparse.data.retrieval import RetrievalBuildConfig, build_retrieval, load_eval_retrieval, split_queries
from ko_sparse.data.retrieval_sets import RetrievalSet, write_beir
from ko_sparse.errors import DataError
from ko_sparse.resources import TOKENIZER_DIR

TOPICS = ["당뇨병 혈당 인슐린", "고혈압 혈압 약", "기차 서울 부산", "메일 삭제 정리", "야구 경기 시간", "감기 몸살 약"]


@pytest.fixture
def beir(tmp_path):
    """Six topics, three passages each; every query has two relevant passages and one judged non-relevant."""
    corpus, queries, qrels = {}, {}, {}
    for t, topic in enumerate(TOPICS):
        words = topic.split()
        for p in range(3):
            corpus[f"d{t}-{p}"] = f"{words[p % 3]} {words[(p + 1) % 3]}에 대한 설명 {p}번째 문서입니다"
        queries[f"q{t}"] = f"{words[0]} {words[1]} 알려줘"
        qrels[f"q{t}"] = {f"d{t}-0": 1, f"d{t}-1": 2, f"d{t}-2": 0}
    return write_beir(tmp_path / "beir", RetrievalSet("toy", corpus, queries, qrels, "toy set", "CC0"))


def test_rows_split_by_query_and_positives_are_never_negatives(beir, tmp_path):
    stats = build_retrieval(RetrievalBuildConfig(str(beir), tmp_path / "out", negatives=3, validation_fraction=0.34))
    splits = load_from_disk(str(tmp_path / "out" / "triplets"))
    assert splits["train"].column_names == ["query", "positive", "negative_1", "negative_2", "negative_3"]
    assert stats["splits"]["train"]["queries"] + stats["splits"]["validation"]["queries"] == len(TOPICS)
    assert not set(splits["train"]["query"]) & set(splits["validation"]["query"])
    assert len(splits["train"]) + len(splits["validation"]) == 2 * len(TOPICS)  # one row per relevant passage
    corpus = load_eval_retrieval(tmp_path / "out" / "eval")[1]
    topic_of = {text: doc_id.split("-")[0] for doc_id, text in corpus.items()}
    relevant = {doc_id for doc_id in corpus if not doc_id.endswith("-2")}
    for split in splits.values():
        for row in split:
            negatives = [row[f"negative_{i}"] for i in (1, 2, 3)]
            assert row["positive"] not in negatives and len(set(negatives)) == 3
            query_topic = topic_of[row["positive"]]
            assert not any(topic_of[n] == query_topic and n in {corpus[d] for d in relevant} for n in negatives)
    queries, corpus, qrels = load_eval_retrieval(tmp_path / "out" / "eval")
    assert set(queries.values()) == set(splits["validation"]["query"])  # the held-out queries, over everything
    assert len(corpus) == 3 * len(TOPICS) and set(qrels) == set(queries)


def test_split_queries_is_seeded_and_keeps_both_sides():
    ids = [f"q{i}" for i in range(10)]
    assert split_queries(ids, 0.2, 1) == split_queries(ids, 0.2, 1) and len(split_queries(ids, 0.2, 1)) == 2
    assert len(split_queries(ids[:2], 0.9, 1)) == 1


def test_teacher_scores_are_stored_cached_and_resumed(beir, tmp_path):
    calls = []

    def teacher(pairs):
        calls.append(len(pairs))
        return [float(len(q) + len(p)) for q, p in pairs]

    config = RetrievalBuildConfig(str(beir), tmp_path / "out", negatives=2)
    build_retrieval(config, teacher=teacher)
    scored = sum(calls)
    rows = load_from_disk(str(tmp_path / "out" / "triplets"))["train"]
    row = rows[0]
    assert row["teacher_scores"] == [
        float(len(row["query"]) + len(row[c])) for c in ("positive", "negative_1", "negative_2")
    ]
    cache = tmp_path / "out" / "teacher_scores.jsonl"
    lines = cache.read_text().splitlines()
    assert len(lines) == scored
    cache.write_text("\n".join(lines[: scored // 2]) + "\n")  # an interrupted run wrote half
    calls.clear()
    build_retrieval(config, teacher=teacher)
    assert sum(calls) == scored - scored // 2  # only what was missing
    assert load_from_disk(str(tmp_path / "out" / "triplets"))["train"].to_list() == rows.to_list()


def local_cross_encoder(path):
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_cli_with_a_local_cross_encoder_teacher(beir, tmp_path):
    teacher = local_cross_encoder(tmp_path / "teacher")
    result = CliRunner().invoke(
        cli, ["data", "build", "--retrieval", str(beir), "--output", str(tmp_path / "out"), "--teacher", str(teacher)]
    )
    assert result.exit_code == 0, result.output
    assert "validation queries for the trainer's evaluator" in result.output
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["teacher"] and stats["negatives"].startswith("BM25")
    rows = load_from_disk(str(tmp_path / "out" / "triplets"))["train"]
    assert len(rows[0]["teacher_scores"]) == 1 + 4


def test_bad_sources_are_clear_errors(tmp_path):
    result = CliRunner().invoke(cli, ["data", "build", "--retrieval", "no-such-set", "--output", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unknown benchmark set" in result.output
    with pytest.raises(DataError, match="--negatives 0"):
        RetrievalBuildConfig("miracl-ko", tmp_path, negatives=0)
    missing = CliRunner().invoke(
        cli,
        [
            "data",
            "build",
            "--retrieval",
            "miracl-ko",
            "--output",
            str(tmp_path / "o"),
            "--teacher",
            str(tmp_path / "nope"),
        ],
    )
    assert missing.exit_code == 2 and "--teacher" in missing.output
