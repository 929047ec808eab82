"""What the cluster should return, computed in Python from the packaged zips: query weights, stored
(9-bit) document weights and the top 10 of their dot product."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ko_sparse.export.reference import REFERENCES
from ko_sparse.opensearch.rank_features import stored_value


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
