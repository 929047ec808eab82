"""ko-sparse data build: synonym alignment and filters, the judged sample, splits, difficulty balance, determinism."""

from __future__ import annotations

import json
import math
import random

import pytest
from click.testing import CliRunner
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from ko_sparse.cli.main import cli
from ko_sparse.data.alignment import Token, aligned_exchanges, tokens_in_context, unit_text
from ko_sparse.data.build import BuildConfig, build_dataset, collect_pairs
from ko_sparse.data.judged import FIRST_VERSION, LABELS, Measure, measure, read_judged
from ko_sparse.data.pairs import Pair, user_pairs
from ko_sparse.data.synonyms import (
    Aligned,
    FilterReport,
    MiningThresholds,
    TermPair,
    apply_filters,
    count_candidates,
    cross_encoder_filter,
    filter_checks,
    mine_synonyms,
)
from ko_sparse.data.triplets import load_eval_pairs, load_triplets
from ko_sparse.errors import DataError
from ko_sparse.resources import JUDGED_SYNONYMS_FILE, TOKENIZER_DIR
from ko_sparse.resources.lexicon import read_lexicon
from ko_sparse.text.morphemes import MorphemeTokenizer

TRUE_PAIR = ("당뇨", "당뇨병")
STATISTICS = ("min_count", "pmi", "information_gain")


def unit(text: str, word_class: str = "noun", tag: str = "NNG") -> tuple[Token, ...]:
    return tuple(Token(form, tag, word_class) for form in text.split(" "))


def planted_alignments() -> list[Aligned]:
    """Eight pairs exchange 당뇨/당뇨병; noise: one-off swaps and a word that swaps with everything."""
    differences = [({"당뇨"}, {"당뇨병"}) for _ in range(8)]
    differences += [({f"잡음{i}"}, {f"소음{i}"}) for i in range(5)]  # aligned once each
    differences += [({"그리고"}, {f"단어{i % 3}"}) for i in range(12)]  # 그리고 pairs with many words
    differences += [({f"단어{i % 3}"}, {f"말{i}"}) for i in range(30)]
    return [
        Aligned(frozenset((unit(a), unit(b)) for a in source for b in target), str(i), ("source", "target"))
        for i, (source, target) in enumerate(differences)
    ]


def mined(thresholds: MiningThresholds) -> tuple[list[TermPair], FilterReport]:
    report = FilterReport()
    return apply_filters(count_candidates(planted_alignments()), thresholds, read_lexicon(), report), report


def test_filters_keep_the_true_pair_and_remove_planted_noise():
    kept, report = mined(MiningThresholds(filters=STATISTICS, min_count=2, min_pmi=2.0))
    pairs = {tuple(sorted((p.source, p.target))) for p in kept}
    assert tuple(sorted(TRUE_PAIR)) in pairs
    assert not any(a.startswith(("잡음", "소음")) for a, _ in pairs)
    assert not any("그리고" in pair for pair in pairs)
    assert report.removed == {"min_count": 5 + 30, "pmi": 3}
    assert report.kept == len(kept) == 1
    (true,) = kept
    assert (true.count, true.groups, true.source_count, true.target_count, true.pairs) == (8, 8, 8, 8, 55)


def test_information_gain_threshold_is_applied():
    kept, report = mined(MiningThresholds(filters=STATISTICS, min_count=2, min_pmi=0.0, min_information_gain=0.5))
    # 당뇨/당뇨병 always swap together: their indicators share ~0.6 bits; 그리고's pairs share far less
    assert report.removed["information_gain"] == 3
    assert [(p.source, p.target) for p in kept] == [TRUE_PAIR] and kept[0].information_gain > 0.5


def test_cross_encoder_filter_with_a_local_model(tmp_path):
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
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    kept, report = mined(MiningThresholds(filters=STATISTICS, min_count=2, min_pmi=0.0))
    scored = cross_encoder_filter(kept, str(tmp_path), threshold=0.0, report=report)
    assert report.removed["cross_encoder"] == 0 and all(0.0 <= p.cross_encoder <= 1.0 for p in scored)
    strict = cross_encoder_filter(kept, str(tmp_path), threshold=1.1, report=report)
    assert strict == [] and report.removed["cross_encoder"] == len(kept)


def exchanged(source: str, target: str) -> set[tuple[str, str]]:
    tokens = [tokens_in_context(m) for m in MorphemeTokenizer().tagged([source, target])]
    return {(unit_text(a), unit_text(b)) for a, b in aligned_exchanges(*tokens, max_length=3)}


def test_alignment_pairs_what_two_paraphrases_exchange():
    assert exchanged("당뇨병 환자의 혈당이 높다", "당뇨병 환자의 당 수치가 높다") == {("혈당", "당 수치")}
    # morpheme by morpheme when both spans have the same word classes
    assert {("아들", "아드님"), ("태어나", "낳")} <= exchanged("아들이 태어난 날짜", "아드님을 낳으신 날짜")
    # a word that only moved is not exchanged
    assert exchanged("독서등이랑 취침등 중에 뭐가 좋아?", "취침등이랑 독서등 중에 뭐가 좋아?") == set()


def candidate(source: str, target: str, source_tags: str, target_tags: str, classes=("noun", "noun")) -> TermPair:
    return TermPair(source, target, 5, 2, 5, 5, 100, 5.0, 0.01, source_tags, target_tags, *classes, ("a", "b"))


def test_linguistic_filters():
    checks = filter_checks(MiningThresholds(), read_lexicon())
    verbs = ("verb", "verb")
    assert not checks["negation"](candidate("켜", "켜 말", "VV", "VV VX", verbs))  # leave on / do not leave on
    assert checks["negation"](candidate("말", "안 되", "VX", "MAG VV", ("function", "verb")))  # both forbid
    assert not checks["antonym"](candidate("끄", "켜 놓", "VV", "VV VX", verbs))
    assert checks["antonym"](candidate("까먹", "잊", "VV", "VV", verbs))
    assert not checks["number"](candidate("삼", "삼십", "NR", "NR NR", ("number", "number")))
    assert not checks["substring"](candidate("날", "날짜", "NNG", "NNG"))
    assert checks["substring"](candidate("지 메일", "지메일", "NNG NNG", "NNG"))  # spacing variant
    assert checks["substring"](candidate("메일", "이메일", "NNG", "NNG"))  # listed short form
    assert not checks["part_of_speech"](candidate("가", "재밌", "JKS", "VA", ("function", "adjective")))
    assert not checks["content"](candidate("다", "다른", "MAG", "MM", ("function", "determiner")))
    assert checks["content"](candidate("말", "안 되", "VX", "MAG VV", ("function", "function")))


def test_judged_sample_is_labelled_and_covers_both_generators():
    rows = [json.loads(line) for line in JUDGED_SYNONYMS_FILE.read_text(encoding="utf-8").splitlines()]
    judged = read_judged()
    assert len(judged) == len(rows) >= 300
    assert {row.label for row in judged} == set(LABELS)
    assert all(row.weight > 0 for row in judged) and all(len(row["example"]) == 2 for row in rows)
    assert {"aligned", "differences"} <= {generator for row in rows for generator in row["generators"]}
    assert len({(row.source, row.target) for row in judged}) == len(judged)


def test_judged_sample_rejects_unknown_labels(tmp_path):
    bad = tmp_path / "judged.jsonl"
    bad.write_text(json.dumps({"source": "a", "target": "b", "label": "maybe"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"judged\.jsonl:1: label 'maybe'"):
        read_judged(bad)


@pytest.fixture(scope="module")
def bundled_pairs_mined():
    """The default pipeline and the first version on every bundled pair (about a minute on 2 cores)."""
    pairs, _ = collect_pairs(BuildConfig(output_dir="unused"), random.Random(42))
    tokenize, lexicon = MorphemeTokenizer(), read_lexicon()
    default = mine_synonyms(pairs, tokenize.tagged, MiningThresholds(), lexicon)
    first = mine_synonyms(pairs, tokenize.tagged, FIRST_VERSION, lexicon)
    return default, first


def standard_error(measured: Measure) -> float:
    """The binomial standard error of a precision measured on ``judged_kept`` judged pairs."""
    return math.sqrt(measured.precision * (1 - measured.precision) / measured.judged_kept)


@pytest.mark.slow  # mines every bundled pair: about a minute of CPU
def test_default_pipeline_precision_on_the_judged_sample(bundled_pairs_mined):
    """Measured (docs/training.md): 0.708 on the 24 judged pairs the defaults keep (402 kept in all), with
    thresholds chosen on that sample; one pair moves it by 4 points. What the sample supports, and is asserted:
    most kept pairs are synonyms (0.708 less two standard errors is 0.52), and clearly more than the first
    version's 0.157 (2,986 kept), beyond two standard errors of each."""
    (_, kept, _), (_, first_kept, _) = bundled_pairs_mined
    judged = read_judged()
    default, first = measure("defaults", kept, judged), measure("first version", first_kept, judged)
    assert len(kept) >= 350 and default.judged_kept >= 20
    assert default.precision >= 0.5
    assert default.precision - 2 * standard_error(default) > first.precision + 2 * standard_error(first)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    output = tmp_path_factory.mktemp("built")
    config = BuildConfig(
        output,
        sources=("parakqc", "korsts"),
        max_pairs_per_source=300,
        validation_fraction=0.1,
        negatives_per_anchor=2,
        seed=3,
    )
    return output, config, build_dataset(config)


def test_columns_splits_and_outputs(built):
    output, _, stats = built
    splits = load_triplets(output / "triplets")
    assert set(splits) == {"train", "validation"}
    assert splits["train"].column_names == ["anchor", "positive", "negative", "difficulty"]
    assert set(splits["train"]["difficulty"]) == {"hard", "medium", "easy"}
    assert stats["pairs_per_source"] == {"parakqc": 300, "korsts": 300}
    assert load_eval_pairs(output / "eval_pairs.jsonl")
    synonyms = [json.loads(line) for line in (output / "filtered_synonym_pairs.jsonl").read_text().splitlines()]
    assert all({"source", "target", "count", "pmi", "information_gain"} <= set(s) for s in synonyms)
    assert json.loads((output / "stats.json").read_text())["synonym_filtering"]["kept"] == len(synonyms)


def test_difficulty_shares_are_within_the_requested_proportions(built):
    _, config, stats = built
    shares = stats["splits"]["train"]["difficulty_share"]
    for name, wanted in config.proportions.items():
        assert shares[name] == pytest.approx(wanted, abs=0.05)


def test_no_positive_is_its_own_negative_and_no_anchor_crosses_splits(built):
    output, _, _ = built
    splits = load_triplets(output / "triplets")
    known = {}
    for split in splits.values():
        for row in split:
            known.setdefault(row["anchor"], set()).add(row["positive"])
    for split in splits.values():
        for row in split:
            assert row["negative"] not in known[row["anchor"]] and row["negative"] != row["anchor"]
    train_texts = set(splits["train"]["anchor"]) | set(splits["train"]["positive"])
    assert not train_texts & (set(splits["validation"]["anchor"]) | set(splits["validation"]["positive"]))


def test_same_seed_same_dataset(built, tmp_path):
    output, config, _ = built
    again = BuildConfig(
        tmp_path / "again",
        sources=config.sources,
        max_pairs_per_source=300,
        validation_fraction=0.1,
        negatives_per_anchor=2,
        seed=3,
    )
    build_dataset(again)
    first, second = load_triplets(output / "triplets"), load_triplets(tmp_path / "again" / "triplets")
    assert first["train"].to_list() == second["train"].to_list()
    assert first["validation"].to_list() == second["validation"].to_list()


@pytest.mark.slow  # warms up and trains a tiny model: minutes of CPU
def test_the_tiny_preset_trains_on_the_output(built, tmp_path):
    from ko_sparse.train.config import load_config, preset_path
    from ko_sparse.train.trainer import Training

    output, _, _ = built
    config = load_config(
        preset_path("tiny"),
        [
            f"data.train={output / 'triplets'}",
            f"data.eval_pairs={output / 'eval_pairs.jsonl'}",
            "model.base_model=tiny:32x1",
            "training.max_steps=3",
            "eval.num_distractors=20",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    result = Training(config).train()
    assert result.global_step == 3 and (tmp_path / "run" / "best" / "modules.json").is_file()


def test_user_pairs_and_their_errors(tmp_path):
    good = tmp_path / "pairs.csv"
    good.write_text("source,target\n당뇨,당뇨병\n", encoding="utf-8")
    assert list(user_pairs(str(good))) == [Pair("당뇨", "당뇨병", "pairs.csv")]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv: needs columns source and target"):
        list(user_pairs(str(bad)))
    empty = tmp_path / "empty.csv"
    empty.write_text("source,target\n당뇨,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.csv:2: empty source or target"):
        list(user_pairs(str(empty)))


def test_cli_build_with_user_pairs_only(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    lines = [
        {"source": f"{w} 환자의 혈당 관리", "target": f"{w} 환자의 당 수치 관리"}
        for w in ["당뇨", "노인", "소아", "임산부", "고령", "청소년", "성인", "여성"]
    ]
    lines += [
        {"source": f"{w} 언제 열어", "target": f"{w} 개장 시간"}
        for w in ["도서관", "야구장", "수영장", "박물관", "미술관", "동물원", "식물원", "체육관", "시장", "공원"]
    ]
    pairs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "build",
            "--output",
            str(tmp_path / "out"),
            "--no-bundled",
            "--pairs",
            str(pairs),
            "--validation-fraction",
            "0.25",
            "--min-pmi",
            "1.0",
            "--report",
        ],
    )
    assert result.exit_code == 0, result.output
    synonyms = [
        json.loads(line) for line in (tmp_path / "out" / "filtered_synonym_pairs.jsonl").read_text().splitlines()
    ]
    assert any({s["source"], s["target"]} == {"혈당", "당 수치"} and s["count"] == 8 for s in synonyms)
    assert "synonym pairs kept" in result.output
    # --report: every filter alone and both pipelines, on the judged sample, printed and in stats.json
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    names = [row["name"] for row in stats["synonym_report"]]
    assert names[0].startswith("first version") and names[-1] == "pipeline (defaults)"
    assert "negation alone" in names and "pipeline (defaults)" in result.output
    assert set(stats["synonym_filtering"]["judged"]) == {"name", "precision", "recall", "judged_kept", "kept"}


def test_cli_rejects_an_unknown_synonym_filter(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "build",
            "--output",
            str(tmp_path),
            "--no-bundled",
            "--pairs",
            "x.csv",
            "--synonym-filters",
            "pmi,nope",
        ],
    )
    assert result.exit_code == 2 and "--synonym-filters: unknown ['nope']" in result.output
