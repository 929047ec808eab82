"""ko-sparse's pruning keeps exactly what the live node's ingest pipeline keeps, at every boundary.

A lookup model sends chosen float32 vectors through ML-Commons and the ``sparse_encoding`` processor
with each prune type; the tokens the node stores must be the tokens ``Pruning.keep`` keeps. Every
vector sits where two readings of a prune type disagree: ``<=`` against ``<`` on the threshold,
dropping against keeping the entry that crosses the alpha mass, a float32 against a float64 threshold,
``k`` above the number of weights.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import torch
from opensearchpy import helpers
from transformers import AutoTokenizer

from ko_sparse.model.pruning import Pruning
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.ml_commons import MLCommons, ModelArtifact
from ko_sparse.opensearch.pipelines import ingest_pipeline
from ko_sparse.resources import TOKENIZER_DIR
from tests.integration import tiny_torchscript

F32 = np.float32
CASES = [
    # (prune type, value, weights): the first weights go to the first vocabulary tokens chosen below
    ("alpha_mass", 0.8, [10.0, 6.0, 3.0, 1.0]),  # running sum lands on 0.8 x total: <= keeps it, < does not
    ("alpha_mass", 0.7, [10.0, 6.0, 3.0, 1.0]),  # 6 crosses 14: dropped, not kept
    ("alpha_mass", 0.5, [0.1, 3.6, 3.7]),  # float32 sums keep 3.7; a float64 reading would not
    ("max_ratio", 0.5, [10.0, 5.0, float(np.nextafter(F32(5.0), F32(0.0))), 2.0]),  # >= at exactly 5
    ("max_ratio", 0.1, [6.3216205, 0.63216203, 0.5]),  # float32 threshold 0.63216203 < the float64 product
    ("abs_value", 0.7, [1.0, float(F32(0.7)), float(np.nextafter(F32(0.7), F32(0.0))), 0.5]),  # float32(0.7) < 0.7
    ("abs_value", 0.5, [0.5, float(np.nextafter(F32(0.5), F32(0.0))), 2.0]),  # >= at exactly 0.5
    ("top_k", 3.0, [5.0, 4.0, 3.0, 2.0, 1.0]),
    ("top_k", 10.0, [5.0, 4.0, 3.0]),  # k above the number of weights keeps them all
]


@pytest.fixture(scope="module")
def vocabulary():
    """Weighted tokens and selector tokens: plain vocabulary entries whose strings are distinct and which
    tokenize back to themselves (one id each)."""
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    strings = token_strings(tokenizer)
    plain = [
        token_id
        for token_id in range(3000, len(tokenizer))
        if strings[token_id].isalpha()
        and tokenizer(strings[token_id], add_special_tokens=False)["input_ids"] == [token_id]
    ]
    width = max(len(weights) for _, _, weights in CASES)
    return tokenizer, strings, plain[:width], plain[width : width + len(CASES)]


@pytest.fixture(scope="module")
def lookup_model(ml: MLCommons, vocabulary):
    tokenizer, _, weighted, selectors = vocabulary
    vectors = torch.zeros(len(CASES), len(tokenizer))
    for row, (_, _, weights) in enumerate(CASES):
        vectors[row, weighted[: len(weights)]] = torch.tensor(weights, dtype=torch.float32)
    archive = tiny_torchscript.build_lookup(vectors, selectors)
    model_id = ml.register(ModelArtifact(archive, "ko-sparse-test-pruning-lookup", "SPARSE_ENCODING"))
    ml.deploy(model_id)
    yield model_id
    ml.remove(model_id)


@pytest.mark.parametrize(("row", "case"), list(enumerate(CASES)), ids=[f"{k}={v}:{w}" for k, v, w in CASES])
def test_pruning_keeps_what_the_ingest_pipeline_keeps(opensearch, lookup_model, vocabulary, row, case):
    kind, value, weights = case
    _, strings, weighted, selectors = vocabulary
    name = f"ko-sparse-test-prune-{uuid.uuid4().hex[:8]}"
    opensearch.ingest.put_pipeline(id=name, body=ingest_pipeline(lookup_model, ("text", "embedding"), kind, value))
    try:
        opensearch.indices.create(
            index=name,
            body={
                "settings": {"default_pipeline": name},
                "mappings": {"properties": {"text": {"type": "text"}, "embedding": {"type": "rank_features"}}},
            },
        )
        helpers.bulk(opensearch, [{"_index": name, "_id": "1", "text": strings[selectors[row]]}], refresh=True)
        stored = opensearch.get(index=name, id="1")["_source"]["embedding"]
    finally:
        opensearch.indices.delete(index=name, ignore_unavailable=True)
        opensearch.ingest.delete_pipeline(id=name)
    keep = Pruning(kind, value).keep(np.asarray(weights, dtype=np.float32))
    expected = {strings[weighted[i]]: F32(w) for i, (w, kept) in enumerate(zip(weights, keep, strict=True)) if kept}
    assert set(stored) == set(expected)
    assert {token: F32(weight) for token, weight in stored.items()} == expected
