"""Corpus streaming for ko-sparse index: every format, bad rows with their line, resuming from an offset."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ko_sparse.data.documents import (
    BadRow,
    Document,
    Fields,
    JsonLinesReader,
    open_corpus,
    read_queries,
    stream_documents,
)
from ko_sparse.errors import DataError

ROWS = [
    {"_id": "d1", "title": "당뇨", "text": "당뇨병 환자는 혈당을 관리해야 한다."},
    {"_id": "d2", "text": "고혈압 약은 매일 같은 시간에 먹는다."},
    {"_id": "d3", "text": "감기에 걸리면 충분히 쉬어야 한다."},
]


def write_lines(path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_jsonl_rows_keep_their_line_numbers_and_bad_rows_do_not_stop_the_stream(tmp_path):
    lines = [json.dumps(ROWS[0], ensure_ascii=False), "", "{not json", "[1, 2]", '{"_id": "x", "text": ""}']
    lines.append(json.dumps(ROWS[1], ensure_ascii=False))
    items = list(stream_documents(open_corpus(write_lines(tmp_path / "c.jsonl", lines)), Fields()))
    assert items[0] == Document(0, "d1", "당뇨 당뇨병 환자는 혈당을 관리해야 한다.", "당뇨")
    bad = [item for item in items if isinstance(item, BadRow)]
    assert [(b.offset, b.where.rsplit(":", 1)[1]) for b in bad] == [(2, "3"), (3, "4"), (4, "5")]
    assert bad[0].reason.startswith("not valid JSON") and "JSON object" in bad[1].reason
    assert bad[2].reason == "field 'text' is missing or empty"
    assert items[-1] == Document(5, "d2", ROWS[1]["text"])


def test_a_resumed_read_starts_at_the_offset(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", [json.dumps(r, ensure_ascii=False) for r in ROWS])
    reader = open_corpus(path)
    assert [d.doc_id for d in stream_documents(reader, Fields(), start=1)] == ["d2", "d3"]
    assert reader.count() == 3
    before = reader.fingerprint()
    assert before == JsonLinesReader(tmp_path / "c.jsonl").fingerprint()
    (tmp_path / "c.jsonl").write_text((tmp_path / "c.jsonl").read_text() + "{}\n")
    assert before != JsonLinesReader(tmp_path / "c.jsonl").fingerprint()


def test_ids_default_to_the_row_number_without_an_id_field(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"text": r["text"]}, ensure_ascii=False) for r in ROWS])
    assert [d.doc_id for d in stream_documents(open_corpus(path), Fields())] == ["0", "1", "2"]
    named = write_lines(tmp_path / "n.jsonl", ['{"key": 7, "body": "가나다"}', '{"body": "라마"}'])
    items = list(stream_documents(open_corpus(named), Fields(text="body", id="key", title=None)))
    assert items[0] == Document(0, "7", "가나다") and items[1].reason == "id field 'key' is missing or empty"


def test_csv_and_tsv_report_rows_with_the_wrong_number_of_columns(tmp_path):
    tsv = write_lines(tmp_path / "c.tsv", ["id\ttext", "1\t당뇨병", "2\t고혈압\textra", "3"])
    items = list(stream_documents(open_corpus(tsv), Fields()))
    assert items[0] == Document(0, "1", "당뇨병")
    assert items[1].where.endswith("c.tsv:3") and "expected 2 columns" in items[1].reason
    assert items[2].where.endswith("c.tsv:4")
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('id,text\n1,"여러 줄\n문서"\n2,둘\n', encoding="utf-8")
    items = list(stream_documents(open_corpus(str(csv_path)), Fields()))
    assert items == [Document(0, "1", "여러 줄\n문서"), Document(1, "2", "둘")]
    assert [d.doc_id for d in stream_documents(open_corpus(str(csv_path)), Fields(), start=1)] == ["2"]


def test_gzipped_jsonl(tmp_path):
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS))
    reader = open_corpus(str(path))
    assert [d.doc_id for d in stream_documents(reader, Fields())] == ["d1", "d2", "d3"] and reader.count() is None


def test_parquet_skips_whole_row_groups_on_resume(tmp_path):
    path = tmp_path / "c.parquet"
    table = pa.table({"id": [f"p{i}" for i in range(10)], "text": [f"문서 {i}" for i in range(9)] + [None]})
    pq.write_table(table, path, row_group_size=3)
    reader = open_corpus(str(path))
    assert reader.count() == 10
    items = list(stream_documents(reader, Fields(), start=4))
    assert [item.offset for item in items] == list(range(4, 10))
    assert items[0] == Document(4, "p4", "문서 4")
    assert isinstance(items[-1], BadRow) and items[-1].where.endswith("row 10")


def test_beir_folder_and_local_hugging_face_dataset(tmp_path):
    beir = tmp_path / "beir"
    beir.mkdir()
    write_lines(beir / "corpus.jsonl", [json.dumps(r, ensure_ascii=False) for r in ROWS])
    assert [d.doc_id for d in stream_documents(open_corpus(str(beir)), Fields())] == ["d1", "d2", "d3"]
    dataset = tmp_path / "hf"
    dataset.mkdir()
    pq.write_table(pa.table({"docid": ["a", "b"], "text": ["가", "나"]}), dataset / "train.parquet")
    items = list(stream_documents(open_corpus(str(dataset)), Fields(), start=1))
    assert items == [Document(1, "b", "나")]


def test_unknown_sources_are_refused_with_the_setting(tmp_path):
    with pytest.raises(DataError, match=r"--corpus .*nope\.jsonl: file not found"):
        open_corpus(str(tmp_path / "nope.jsonl"))
    (tmp_path / "c.xml").write_text("<x/>")
    with pytest.raises(DataError, match="unknown format"):
        open_corpus(str(tmp_path / "c.xml"))


def test_queries_file_as_lines_or_jsonl(tmp_path):
    assert read_queries(write_lines(tmp_path / "q.txt", ["당뇨병 치료", "", "고혈압"])) == [
        ("1", "당뇨병 치료"),
        ("3", "고혈압"),
    ]
    jsonl = write_lines(tmp_path / "q.jsonl", ['{"qid": "q7", "text": "당뇨병"}', '{"query": "감기"}'])
    assert read_queries(jsonl) == [("q7", "당뇨병"), ("2", "감기")]
