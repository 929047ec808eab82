"""A user's corpus streamed row by row: JSON Lines, CSV/TSV, Parquet, a BEIR folder or a Hugging Face dataset.

Nothing is loaded whole: memory stays flat however large the corpus. Every row has an ``offset``, its
position among the source's rows (JSON Lines: its line, blank lines included), which is what
``--resume`` counts, and a place (``file:line`` or ``file row N``) for messages. A row that cannot be
used (bad JSON, no text, no id) comes out as a :class:`BadRow` with the reason; the stream goes on.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ko_sparse.data.beir import CORPUS_FILE, ID_FIELD, TEXT_FIELD, TITLE_FIELD, is_beir_folder, passage
from ko_sparse.data.jsonl import parse_record
from ko_sparse.errors import DataError

ID_CANDIDATES = (ID_FIELD, "id", "doc_id", "docid")  # tried in order when no --id-field is given
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
MAX_ID_BYTES = 512  # OpenSearch's limit on _id
FINGERPRINT_BYTES = 1 << 20


@dataclass(frozen=True)
class Fields:
    """Which fields of a row hold the text, the id (None: auto, see :data:`ID_CANDIDATES`) and the title."""

    text: str = TEXT_FIELD
    id: str | None = None
    title: str | None = TITLE_FIELD


@dataclass(frozen=True)
class Document:
    offset: int
    doc_id: str
    text: str  # the title (when there is one) and the text: what is searched
    title: str = ""


@dataclass(frozen=True)
class BadRow:
    offset: int
    where: str
    reason: str


@dataclass(frozen=True)
class Row:
    """One raw row: its record, or why it could not be read."""

    offset: int
    where: str
    record: dict[str, Any] | None
    error: str = ""


class CorpusReader(Protocol):
    location: str
    source: str  # the file (resolved) or the dataset and split: what row-number ids are numbers of

    def rows(self, start: int = 0) -> Iterator[Row]:
        """The rows from ``offset`` ``start`` on."""
        ...

    def count(self) -> int | None:
        """How many rows there are (an estimate for CSV), or None when unknown."""
        ...

    def fingerprint(self) -> str:
        """Changes when the source does: what ``--resume`` checks before continuing."""
        ...


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _file_fingerprint(path: Path) -> str:
    """Path, size and the sha256 of the first and last MiB: cheap on a 10 GB file, changed by any append."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as data:
        digest.update(data.read(FINGERPRINT_BYTES))
        data.seek(max(0, size - FINGERPRINT_BYTES))
        digest.update(data.read(FINGERPRINT_BYTES))
    return f"{path.resolve()}:{size}:{digest.hexdigest()[:16]}"


def _count_lines(path: Path) -> int | None:
    if path.suffix == ".gz":
        return None
    with path.open("rb") as data:
        return sum(block.count(b"\n") for block in iter(lambda: data.read(1 << 20), b""))


class JsonLinesReader:
    """``.jsonl`` / ``.ndjson`` (optionally ``.gz``): one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self.source = str(path.resolve())

    def rows(self, start: int = 0) -> Iterator[Row]:
        with _open_text(self.path) as lines:
            for offset, line in enumerate(itertools.islice(lines, start, None), start=start):
                if not line.strip():
                    continue
                where = f"{self.path}:{offset + 1}"
                try:
                    yield Row(offset, where, parse_record(where, line))
                except DataError as error:
                    yield Row(offset, where, None, str(error).removeprefix(f"{where}: "))

    def count(self) -> int | None:
        return _count_lines(self.path)

    def fingerprint(self) -> str:
        return _file_fingerprint(self.path)


class DelimitedReader:
    """CSV (``,``) or TSV (tab) with a header row; quoted fields may span lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self.source = str(path.resolve())
        self.delimiter = "\t" if ".tsv" in path.suffixes else ","
        csv.field_size_limit(sys.maxsize)

    def rows(self, start: int = 0) -> Iterator[Row]:
        with _open_text(self.path) as lines:
            reader = csv.DictReader(lines, delimiter=self.delimiter, restkey="\0extra")
            if not reader.fieldnames:
                return
            width = len(reader.fieldnames)
            line = reader.line_num + 1
            for offset, record in enumerate(reader):
                where = f"{self.path}:{line}"
                line = reader.line_num + 1
                if offset < start:
                    continue
                extra = record.pop("\0extra", None)
                if extra is not None or None in record.values():
                    columns = width + len(extra or []) - sum(value is None for value in record.values())
                    yield Row(offset, where, None, f"expected {width} columns as in the header, got {columns}")
                else:
                    yield Row(offset, where, record)

    def count(self) -> int | None:
        lines = _count_lines(self.path)
        return None if lines is None else max(0, lines - 1)

    def fingerprint(self) -> str:
        return _file_fingerprint(self.path)


class ParquetReader:
    """Parquet, read a record batch at a time; whole row groups are skipped on resume."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.location = str(path)
        self.source = str(path.resolve())
        self.file = pq.ParquetFile(path)

    def rows(self, start: int = 0) -> Iterator[Row]:
        group_start, first_row, groups = 0, 0, []
        for group in range(self.file.num_row_groups):
            size = self.file.metadata.row_group(group).num_rows
            if group_start + size > start:
                first_row = group_start if not groups else first_row
                groups.append(group)
            group_start += size
        if not groups:
            return
        offset = first_row
        for batch in self.file.iter_batches(batch_size=1024, row_groups=groups):
            for record in batch.to_pylist():
                if offset >= start:
                    yield Row(offset, f"{self.path} row {offset + 1}", record)
                offset += 1

    def count(self) -> int | None:
        return self.file.metadata.num_rows

    def fingerprint(self) -> str:
        return _file_fingerprint(self.path)


class HubReader:
    """A Hugging Face dataset (``id`` or ``id:config``, or a local dataset folder), streamed."""

    def __init__(self, spec: str, split: str) -> None:
        from ko_sparse.data.hub import stream_hub_rows

        self.location = spec
        self.source = f"hf:{spec}:{split}"
        self.split = split
        self.dataset = stream_hub_rows(spec, split)

    def rows(self, start: int = 0) -> Iterator[Row]:
        for offset, record in enumerate(itertools.islice(self.dataset, start, None), start=start):
            yield Row(offset, f"{self.location} row {offset + 1}", record)

    def count(self) -> int | None:
        splits = getattr(self.dataset.info, "splits", None) or {}
        split = splits.get(self.split)
        return split.num_examples if split is not None and split.num_examples else None

    def fingerprint(self) -> str:
        return self.source


def open_corpus(location: str, split: str = "train", setting: str = "--corpus") -> CorpusReader:
    """The reader for ``location``: by suffix for files, ``corpus.jsonl`` inside for a BEIR folder, else a
    Hugging Face dataset (a local dataset folder, or an id with an optional ``:config``)."""
    path = Path(location)
    suffixes = [s for s in path.suffixes if s != ".gz"]
    if path.is_file():
        if suffixes and suffixes[-1] in JSONL_SUFFIXES:
            return JsonLinesReader(path)
        if suffixes and suffixes[-1] in (".csv", ".tsv"):
            return DelimitedReader(path)
        if suffixes and suffixes[-1] == ".parquet":
            return ParquetReader(path)
        raise DataError(f"{setting} {location}: unknown format (expected .jsonl, .csv, .tsv, .parquet, optionally .gz)")
    if is_beir_folder(path):
        return JsonLinesReader(path / CORPUS_FILE)
    if path.is_dir() or (not path.suffix and location.count("/") >= 1):
        return HubReader(location, split)
    raise DataError(f"{setting} {location}: file not found (nor a BEIR folder or a Hugging Face dataset id)")


def detect_id_field(reader: CorpusReader, fields: Fields) -> str | None:
    """``fields.id``, else the first of :data:`ID_CANDIDATES` the first readable row has (None: row numbers)."""
    if fields.id is not None:
        return fields.id
    first = next((row.record for row in reader.rows() if row.record is not None), None)
    return next((name for name in ID_CANDIDATES if first is not None and name in first), None)


def _string(record: dict[str, Any], field: str) -> str | None:
    value = record.get(field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def to_document(row: Row, fields: Fields, id_field: str | None) -> Document | BadRow:
    """The document a row holds, or why it holds none."""
    if row.record is None:
        return BadRow(row.offset, row.where, row.error)
    text = _string(row.record, fields.text)
    if text is None:
        return BadRow(row.offset, row.where, f"field {fields.text!r} is missing or empty")
    doc_id = _string(row.record, id_field) if id_field else str(row.offset)
    if doc_id is None:
        return BadRow(row.offset, row.where, f"id field {id_field!r} is missing or empty")
    if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        return BadRow(row.offset, row.where, f"id is longer than OpenSearch's {MAX_ID_BYTES} bytes")
    title = (_string(row.record, fields.title) or "") if fields.title else ""
    return Document(row.offset, doc_id, passage(title, text), title)


def stream_documents(reader: CorpusReader, fields: Fields, start: int = 0) -> Iterator[Document | BadRow]:
    """Every document from offset ``start`` on, bad rows included (in order)."""
    id_field = detect_id_field(reader, fields)
    for row in reader.rows(start):
        yield to_document(row, fields, id_field)


def read_queries(path: str | Path) -> list[tuple[str, str]]:
    """``(id, text)`` of a queries file: JSON Lines (``text`` or ``query``, optional ``_id``/``id``/``qid``) or
    one query per line (ids are line numbers)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--queries {path}: file not found")
    queries = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if path.suffix not in JSONL_SUFFIXES:
                queries.append((str(number), line.strip()))
                continue
            record = parse_record(f"{path}:{number}", line)
            text = _string(record, "text") or _string(record, "query")
            if text is None:
                raise DataError(f"{path}:{number}: no 'text' or 'query' field")
            qid = next((_string(record, key) for key in (*ID_CANDIDATES, "qid") if _string(record, key)), None)
            queries.append((qid or str(number), text))
    return queries
