"""Triplet and evaluation-pair loading, and errors that name the file, row and setting."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, DatasetDict

from ko_sparse.data.paraphrase_triplets import build_paraphrase_triplets
from ko_sparse.data.triplets import load_eval_pairs, load_triplets
from ko_sparse.errors import DataError
from ko_sparse.resources.parakqc import read_parakqc_sets

ROW = {"anchor": "당뇨병", "positive": "혈당 질환", "negative": "무릎 관절", "difficulty": "hard"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_loads_saved_dataset_dict(tmp_path):
    DatasetDict({"train": Dataset.from_list([ROW] * 3), "validation": Dataset.from_list([ROW])}).save_to_disk(
        str(tmp_path / "triplets")
    )
    splits = load_triplets(tmp_path / "triplets")
    assert set(splits) == {"train", "validation"}
    assert splits["train"][0] == ROW


def test_loads_jsonl_with_default_difficulty(tmp_path):
    rows = [{k: v for k, v in ROW.items() if k != "difficulty"}, ROW]
    splits = load_triplets(write_jsonl(tmp_path / "t.jsonl", rows), validation=write_jsonl(tmp_path / "v.jsonl", [ROW]))
    assert splits["train"]["difficulty"] == ["unknown", "hard"]
    assert len(splits["validation"]) == 1


def test_missing_path_names_the_setting(tmp_path):
    with pytest.raises(DataError, match=r"data\.train="):
        load_triplets(tmp_path / "nowhere.parquet")
    with pytest.raises(DataError, match=r"no dataset_dict\.json"):
        load_triplets(tmp_path)


def test_corrupt_saved_dataset_is_reported(tmp_path):
    DatasetDict({"train": Dataset.from_list([ROW])}).save_to_disk(str(tmp_path / "d"))
    for arrow in (tmp_path / "d" / "train").glob("*.arrow"):
        arrow.write_bytes(b"not arrow")
    with pytest.raises(DataError, match="cannot be read"):
        load_triplets(tmp_path / "d")


def test_missing_column_is_named(tmp_path):
    DatasetDict({"train": Dataset.from_list([{"anchor": "a", "positive": "b"}])}).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"missing columns \['negative'\]"):
        load_triplets(tmp_path / "d")


def test_empty_string_names_the_row(tmp_path):
    rows = [ROW, ROW, {**ROW, "positive": "  "}]
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"row 2, column 'positive'"):
        load_triplets(tmp_path / "d")
    with pytest.raises(DataError, match=r"t.jsonl:3: field 'positive' is missing or empty"):
        load_triplets(write_jsonl(tmp_path / "t.jsonl", rows))


def test_bad_json_line_is_named(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"source": "가", "target": "나"}\n{"source": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs.jsonl:2: not valid JSON"):
        load_eval_pairs(path)


def test_eval_pairs(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"source": "가", "target": "나"}, {"source": "가", "target": "다"}])
    assert load_eval_pairs(path) == [("가", "나"), ("가", "다")]


def test_parakqc_sets():
    sets = read_parakqc_sets()
    assert len(sets) == 1000
    assert all(len(group) == 10 for group in sets)
    assert sets[0][0] == "메일을 다 비울까 아니면 안읽은 것만 지울까?"


def test_builtin_triplets_split_by_paraphrase_set(tmp_path):
    build_paraphrase_triplets(tmp_path, seed=7, validation_sets=50)
    splits = load_triplets(tmp_path / "triplets")
    assert (len(splits["train"]), len(splits["validation"])) == (9500, 500)
    train_texts = set(splits["train"]["anchor"]) | set(splits["train"]["positive"])
    assert not train_texts & set(splits["validation"]["anchor"])
    set_of = {sentence: i for i, group in enumerate(read_parakqc_sets()) for sentence in group}
    for row in splits["train"].select(range(200)):
        assert set_of[row["anchor"]] == set_of[row["positive"]] != set_of[row["negative"]]
    pairs = load_eval_pairs(tmp_path / "eval_pairs.jsonl")
    assert len(pairs) == 50
    assert all(set_of[s] == set_of[t] and s != t for s, t in pairs)
