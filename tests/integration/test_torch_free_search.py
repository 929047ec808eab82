"""``ko-sparse search`` talks to a cluster without loading torch: its help and a BM25 search against a live
node, each in a fresh interpreter that then lists which heavy libraries it imported."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from opensearchpy import OpenSearch, helpers

from ko_sparse.opensearch.corpus_index import MORPHEMES, TEXT, IndexMeta, MorphemeField, index_body

HEAVY = ["torch", "transformers", "sentence_transformers", "datasets"]
RUN_CLI = """
import json, sys
from click.testing import CliRunner
from ko_sparse.cli.main import cli
result = CliRunner().invoke(cli, sys.argv[1:])
heavy = [name for name in {heavy} if name in sys.modules]
print(json.dumps({{"exit_code": result.exit_code, "output": result.output, "heavy": heavy}}))
"""


def run_in_fresh_python(*arguments: str) -> dict:
    code = RUN_CLI.format(heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def bm25_index(opensearch: OpenSearch):
    """A small index as ``ko-sparse index --encode pipeline`` lays it out, filled without a model."""
    name = f"ko-sparse-torch-free-{uuid.uuid4().hex[:8]}"
    morphemes = MorphemeField.for_cluster(opensearch)
    meta = IndexMeta("pipeline", "ml-commons:none", None, model_id="none", bm25_analyzer=morphemes.analyzer)
    opensearch.indices.create(index=name, body=index_body(meta, morphemes, None, 1))
    texts = ["당뇨병 환자의 식단 관리", "고혈압 약은 아침에 먹는다", "세종대왕이 한글을 만들었다"]
    rows = [
        {"_index": name, "_id": f"d{n}", "_source": {TEXT: text, MORPHEMES: value}}
        for n, (text, value) in enumerate(zip(texts, morphemes.values(texts), strict=True))
    ]
    helpers.bulk(opensearch, rows, refresh=True)
    yield name
    opensearch.indices.delete(index=name, ignore_unavailable=True)


def test_search_help_imports_no_torch():
    result = run_in_fresh_python("search", "--help")
    assert result["exit_code"] == 0 and "--mode" in result["output"]
    assert result["heavy"] == []


def test_a_bm25_search_imports_no_torch(opensearch_url, bm25_index):
    result = run_in_fresh_python(
        "search", "--host", opensearch_url, "--index", bm25_index, "--mode", "bm25", "당뇨병 식단"
    )
    assert result["exit_code"] == 0, result["output"]
    assert "1. d0" in result["output"]
    assert result["heavy"] == []
