"""What the cluster should return, computed in Python from the packaged zips (query weights, stored 9-bit
document weights and the top 10 of their dot product), and the checks the node tests share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from opensearchpy import helpers

from ko_sparse.cli.main import cli
from ko_sparse.export.reference import REFERENCES
from ko_sparse.opensearch.rank_features import stored_value
from tests.integration.conftest import DOCUMENTS, QUERIES, Cluster


def package_files(package: Path) -> dict[str, bytes]:
    manifest = json.loads((package / "package.json").read_text())
    return {a["function_name"]: (package / a["file"]).read_bytes() for a in manifest["artifacts"]}


def python_top10(
    files: dict[str, bytes],
    function_name: str,
    query: str,
    documents: dict[str, str],
    encoded: list[dict] | None = None,
) -> list[tuple[str, float]]:
    """The dot product of Python's query weights with the stored (9-bit) document weights, best 10."""
    query_weights = REFERENCES[function_name](files[function_name], [query])[0]
    vectors = (
        encoded
        if encoded is not None
        else REFERENCES["SPARSE_ENCODING"](files["SPARSE_ENCODING"], list(documents.values()))
    )
    scores = {
        doc_id: sum(w * float(stored_value(np.float32(vector[t]))) for t, w in query_weights.items() if t in vector)
        for doc_id, vector in zip(documents, vectors, strict=True)
    }
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    return [item for item in ranked if item[1] > 0][:10]


def invoke(cluster: Cluster | str, *arguments: str):
    """``ko-sparse ARGUMENTS`` with the cluster's connection options (a plain URL: the default node)."""
    cluster = Cluster("default", cluster) if isinstance(cluster, str) else cluster
    return CliRunner().invoke(cli, [*arguments, *cluster.options()], env=cluster.env())


def register(cluster: Cluster | str, package, *extra: str) -> dict:
    result = invoke(cluster, "register", "--model", str(package), "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def index_documents(opensearch, index: str) -> None:
    actions = ({"_index": index, "_id": doc_id, "text": text} for doc_id, text in DOCUMENTS.items())
    indexed, errors = helpers.bulk(opensearch, actions, refresh=True, raise_on_error=False)
    assert (indexed, errors) == (len(DOCUMENTS), [])


@contextmanager
def cleaned_up(opensearch, index: str, pipeline: str) -> Iterator[None]:
    try:
        yield
    finally:
        opensearch.indices.delete(index=index, ignore_unavailable=True)
        opensearch.ingest.delete_pipeline(id=pipeline)


def assert_queries_rank_like_python(opensearch, index: str, package, function_name: str, query_model: str) -> None:
    """Index the documents through the pipeline; each query's top 10 scores equal Python's."""
    index_documents(opensearch, index)
    files = package_files(package)
    encoded = REFERENCES["SPARSE_ENCODING"](files["SPARSE_ENCODING"], list(DOCUMENTS.values()))
    for query in QUERIES:
        expected = python_top10(files, function_name, query, DOCUMENTS, encoded)
        hits = opensearch.search(
            index=index,
            body={
                "size": 10,
                "query": {"neural_sparse": {"embedding": {"query_text": query, "model_id": query_model}}},
            },
        )["hits"]["hits"]
        assert [h["_score"] for h in hits] == pytest.approx([score for _, score in expected], rel=1e-4)
        python_score = dict(expected)
        for hit in hits:  # the same documents; equal scores may come in either order
            assert hit["_score"] == pytest.approx(python_score.get(hit["_id"], -1), rel=1e-4)
