"""Ingest and search pipeline bodies for a sparse model, and the query to paste."""

from __future__ import annotations

import json
from collections.abc import Callable

from opensearchpy import NotFoundError, OpenSearch

from ko_sparse.opensearch.two_phase import TwoPhaseParameters
from ko_sparse.opensearch.undo import Undo

PRUNE_TYPES = ("none", "max_ratio", "alpha_mass", "top_k", "abs_value")
# Documents per ML-Commons predict call of the sparse_encoding processor (OpenSearch >= 2.16; neural-search's
# default is 1, a call per document). `python -m benchmarks opensearch` measured no gain on one node with the
# tiny model (docs/speed.md): a batch saves per-call overhead, small within one node; remote ML nodes not measured.
INGEST_BATCH_SIZE = 16


def parse_field_map(text: str) -> tuple[str, str]:
    """``text:embedding`` -> (source text field, rank_features field)."""
    source, separator, target = text.partition(":")
    if not separator or not source or not target:
        raise ValueError(f"--field-map {text!r}: expected TEXT_FIELD:EMBEDDING_FIELD, e.g. text:embedding")
    return source, target


def ingest_pipeline(
    model_id: str,
    field_map: tuple[str, str],
    prune_type: str = "none",
    prune_ratio: float = 0.0,
    batch_size: int = INGEST_BATCH_SIZE,
) -> dict:
    """A ``sparse_encoding`` pipeline sending ``batch_size`` documents of a bulk request per model call."""
    if batch_size < 1:
        raise ValueError(f"ingest batch size {batch_size}: expected a whole number >= 1")
    processor: dict = {"model_id": model_id, "field_map": {field_map[0]: field_map[1]}, "batch_size": batch_size}
    if prune_type != "none":
        processor.update(prune_type=prune_type, prune_ratio=prune_ratio)
    return {
        "description": "ko-sparse: Korean SPLADE document expansion",
        "processors": [{"sparse_encoding": processor}],
    }


def neural_sparse_query(field: str, model_id: str, text: str = "당뇨병 치료") -> str:
    return json.dumps(
        {"query": {"neural_sparse": {field: {"query_text": text, "model_id": model_id}}}}, ensure_ascii=False
    )


def put_pipelines(
    client: OpenSearch,
    model_id: str,
    field_map: tuple[str, str],
    pipeline: str,
    search_pipeline: str | None,
    prune_type: str,
    prune_ratio: float,
    undo: Undo,
    batch_size: int = INGEST_BATCH_SIZE,
) -> None:
    """Create or update the ingest (and search) pipeline, each recorded in ``undo``: a created one is deleted,
    a replaced one gets its previous body back."""
    ingest = client.ingest
    calls = (ingest.get_pipeline, ingest.put_pipeline, ingest.delete_pipeline)
    put_recorded(undo, pipeline, ingest_pipeline(model_id, field_map, prune_type, prune_ratio, batch_size), calls)
    if search_pipeline:
        calls = (client.search_pipeline.get, client.search_pipeline.put, client.search_pipeline.delete)
        put_recorded(undo, search_pipeline, TwoPhaseParameters().pipeline(), calls)


def put_recorded(undo: Undo, name: str, body: dict, calls: tuple[Callable[..., dict], ...]) -> None:
    """Put pipeline ``name`` with the library's ``(get, put, delete)`` calls for its kind, recording how to go
    back to what ``get`` found: its previous body, or deleting it when there was none."""
    get, put, delete = calls
    try:
        previous = get(id=name)[name]
    except NotFoundError:
        undo.record(f"created pipeline {name}", lambda: delete(id=name))
    else:
        undo.record(f"replaced pipeline {name} (its previous body is put back)", lambda: put(id=name, body=previous))
    put(id=name, body=body)
