"""What the ko-sparse index integration tests share: corpora, running the command, reading an index back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from opensearchpy import OpenSearch, helpers

from ko_sparse.cli.main import cli
from ko_sparse.data.retrieval_sets import autorag, miracl
from ko_sparse.model.doc_only import SparseModel
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.pruning import Pruning
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.corpus_index import EMBEDDING
from ko_sparse.opensearch.rank_features import feature_dict, stored_value
from ko_sparse.opensearch.search import contributions

QUERIES = [
    "대한민국의 수도는 어디인가요?",
    "조선 시대 왕의 이름",
    "당뇨병 환자의 식단",
    "한국 전쟁은 언제 시작되었나",
    "불교가 한국에 들어온 시기",
    "태양계에서 가장 큰 행성",
    "세종대왕이 만든 글자",
    "고혈압 약 복용 시간",
]


def korean_passages(count: int) -> list[tuple[str, str]]:
    """(id, text): the MIRACL passages, then the AutoRAG pages, in a fixed order."""
    passages = list(miracl().corpus.items())
    passages += [(f"autorag:{doc_id}", text) for doc_id, text in autorag().corpus.items()]
    if count > len(passages):
        raise ValueError(f"only {len(passages)} bundled passages")
    return passages[:count]


def write_corpus(path: Path, passages: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for doc_id, text in passages:
            out.write(json.dumps({"_id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    return path


def index_arguments(url: str, index: str, corpus: Path, output: Path, *options: str) -> list[str]:
    return ["index", "--host", url, "--index", index, "--corpus", str(corpus), "--output", str(output), *options]


def run_index(arguments: list[str]) -> dict:
    """``ko-sparse index ... --json`` in this process; the summary."""
    result = CliRunner().invoke(cli, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def start_index(arguments: list[str], log: Path) -> subprocess.Popen:
    """``ko-sparse index`` in its own process (to be killed or interrupted). Ctrl-C reaches it as in a
    terminal even when the tests run in a background job, which starts children with SIGINT ignored."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ko_sparse", *arguments],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=environment,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def committed(output: Path) -> int:
    try:
        return json.loads((output / "progress.json").read_text())["next_offset"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def stored_ids(client: OpenSearch, index: str) -> list[str]:
    return [hit["_id"] for hit in helpers.scan(client, index=index, query={"_source": False}, size=1000)]


def fresh_vectors(model: SparseModel, texts: list[str], max_length: int, batch: int, pruning: Pruning | None):
    """What ``ko-sparse index`` stores for ``texts`` encoded afresh, batch by batch as the command encodes them."""
    strings = token_strings(model.encoder.tokenizer)
    vectors = []
    for start in range(0, len(texts), batch):
        encoded = encode_sparse(model.encoder, texts[start : start + batch], 32, max_length)
        encoded = pruning.apply(encoded) if pruning else encoded
        vectors.extend(feature_dict(encoded[row], strings) for row in range(encoded.shape[0]))
    return vectors


def stored_vectors(client: OpenSearch, index: str, expected: dict[str, dict[str, float]], group: int = 20):
    """The weights the index holds for each document's expected tokens, read back from Lucene's explanation of
    a query with weight 1 on each of them: ``{doc_id: {token: stored weight}}``."""
    found = {}
    doc_ids = list(expected)
    for start in range(0, len(doc_ids), group):
        ids = doc_ids[start : start + group]
        tokens = {token: 1.0 for doc_id in ids for token in expected[doc_id]}
        body = {
            "size": len(ids),
            "_source": False,
            "explain": True,
            "query": {
                "bool": {
                    "must": [{"neural_sparse": {EMBEDDING: {"query_tokens": tokens}}}],
                    "filter": [{"ids": {"values": ids}}],
                }
            },
        }
        for hit in client.search(index=index, body=body)["hits"]["hits"]:
            found[hit["_id"]] = {
                c.token: c.document_weight for c in contributions(hit["_explanation"]) if c.source == "sparse"
            }
    return found


def assert_stored_as_encoded(stored: dict[str, dict[str, float]], expected: dict[str, dict[str, float]]) -> None:
    """Same documents, same tokens, and each weight as rank_features keeps it (9 significant bits, rounded down;
    one step of slack for float differences between processes)."""
    assert set(stored) == set(expected)
    for doc_id, tokens in expected.items():
        assert set(stored[doc_id]) == set(tokens), doc_id
        for token, weight in tokens.items():
            quantised = float(stored_value([weight])[0])
            assert abs(stored[doc_id][token] - quantised) <= 2**-8 * quantised, (doc_id, token)
