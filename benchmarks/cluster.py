"""OpenSearch speed on the local node: doc-only ``neural_sparse`` query latency against BM25, bulk
indexing through the ingest pipeline against pre-encoded ``rank_features``.

The model is the tiny doc-only model (SPLADE document encoder + IDF query weights over the corpus),
packaged and registered with ko-sparse's own commands. The random tiny model activates nearly the
whole vocabulary on long documents, so documents are cut to their 256 largest weights (``top_k``,
a trained model's document size), at ingest and for the pre-encoded peer alike. Queries go to the
cluster as text, as users send them: BM25 over the same morphemes as ``ko-sparse bench``, and
``neural_sparse`` with the tokenizer model's id (IDF-weighted tokens, no inference). If nothing
answers on ``--host`` and it is the default, the node is started with ``opensearch/local.sh`` and
stopped afterwards.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from opensearchpy import OpenSearch

from benchmarks.common import arguments, report, tiny_encoder
from ko_sparse.bench.datasets import medical
from ko_sparse.bench.opensearch_systems import ClusterIndex, OpenSearchBM25, bulk_index
from ko_sparse.export.package import package_model
from ko_sparse.model.doc_only import save_doc_only
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.idf import idf_vector
from ko_sparse.model.pruning import Pruning
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.client import PASSWORD_ENV, ClusterConnection, resolve
from ko_sparse.opensearch.corpus_index import EMBEDDING, TEXT
from ko_sparse.opensearch.ml_commons import MLCommons
from ko_sparse.opensearch.pipelines import ingest_pipeline

LOCAL_NODE = Path(__file__).resolve().parent.parent / "opensearch" / "local.sh"
PRUNING = Pruning("top_k", 256)
K = 10


@contextlib.contextmanager
def node(connection: ClusterConnection):
    """A client for the cluster; the local node is started (and stopped after) when nothing answers on
    the default address."""
    client = connection.client()
    if client.ping():
        yield client
        return
    if connection.url != ClusterConnection().url:
        sys.exit(f"nothing answers on {connection.url}")
    subprocess.run([str(LOCAL_NODE), "start"], check=True)
    try:
        yield connection.client()
    finally:
        subprocess.run([str(LOCAL_NODE), "stop"], check=False)


def register(connection: ClusterConnection, package: Path) -> dict[str, str]:
    """``ko-sparse register`` (reuses an identical model already there); function name -> model id.

    The password reaches it through ``OPENSEARCH_PASSWORD`` in its environment, as for any user."""
    options = ["--host", connection.host]
    if connection.user:
        options += ["--user", connection.user]
    if connection.ca_certs:
        options += ["--ca-certs", connection.ca_certs]
    if connection.insecure:
        options.append("--insecure")
    command = [sys.executable, "-m", "ko_sparse", "register", *options, "--model", str(package)]
    output = subprocess.run(
        [*command, "--model-group", "ko-sparse-benchmarks", "--configure-cluster", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **({PASSWORD_ENV: connection.password} if connection.password else {})},
    ).stdout
    return {model["function_name"]: model["model_id"] for model in json.loads(output)["models"]}


def latencies(client: OpenSearch, index: str, bodies: list[dict], repeat: int) -> list[float]:
    """Milliseconds per search request (client side, including the cluster's query-time inference)."""
    for body in bodies[:5]:
        client.search(index=index, body=body)  # warm-up
    measured = []
    for _ in range(repeat):
        for body in bodies:
            start = time.perf_counter()
            client.search(index=index, body=body)
            measured.append((time.perf_counter() - start) * 1000)
    return measured


def percentile(values: list[float], q: int) -> float:
    return float(np.percentile(values, q))


def timed_bulk(client: OpenSearch, index: str, documents: list[tuple[str, dict]], pipeline: str | None) -> float:
    """Documents per second of one bulk load (index created before, refresh included)."""
    mapping = {EMBEDDING: {"type": "rank_features"}, TEXT: {"type": "text", "index": False}}
    client.indices.create(
        index=index,
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"properties": mapping}},
    )
    start = time.perf_counter()
    bulk_index(client, index, iter(documents), len(documents), pipeline=pipeline)
    return len(documents) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny:64x2, documents cut to 256 tokens", repeat=5)
    spec, max_length = ("tiny:64x2", 256) if args.quick else ("tiny:768x22", 512)
    retrieval = medical()
    texts = list(retrieval.corpus.values())
    encoder = tiny_encoder(spec, max_length, torch.device("cpu"))
    connection = resolve(args.host, args.user, args.ca_certs, args.insecure, getpass.getpass)
    with tempfile.TemporaryDirectory() as work, node(connection) as client:
        model_dir, package = Path(work, "model"), Path(work, "package")
        save_doc_only(encoder, idf_vector(encoder.tokenizer, texts), model_dir)
        package_model(model_dir, package, max_length=max_length)
        ids = register(connection, package)
        strings = token_strings(encoder.tokenizer)
        start = time.perf_counter()
        vectors = PRUNING.apply(encode_sparse(encoder, texts, 32, max_length, show_progress=True))
        local_encode_rate = len(texts) / (time.perf_counter() - start)
        encoded = [
            (
                doc_id,
                {EMBEDDING: {strings[i]: float(w) for i, w in zip(row.indices, row.data, strict=True) if strings[i]}},
            )
            for doc_id, row in zip(retrieval.corpus, vectors, strict=True)
        ]
        bm25 = OpenSearchBM25(client, "ko-sparse-benchmark-bm25")
        pre_encoded, ingested = (ClusterIndex(client, f"ko-sparse-benchmark-{name}") for name in ("pre", "ingest"))
        targets = [bm25.target, pre_encoded, ingested]
        ingested.pipeline = f"{ingested.name}-pipeline"
        for target in targets:
            target.delete()  # what an interrupted run left
        try:
            pre_rate = timed_bulk(client, pre_encoded.name, encoded, None)
            client.ingest.put_pipeline(
                id=ingested.pipeline,
                body=ingest_pipeline(ids["SPARSE_ENCODING"], (TEXT, EMBEDDING), PRUNING.kind, PRUNING.value),
            )
            plain = [(doc_id, {TEXT: text}) for doc_id, text in retrieval.corpus.items()]
            ingest_rate = timed_bulk(client, ingested.name, plain, ingested.pipeline)
            bm25.index(retrieval.corpus)
            queries = list(retrieval.queries.values())
            bm25_bodies = [bm25.query_body(q, K) for q in queries]  # tokenised before timing: BM25's best case
            bm25_ms = latencies(client, bm25.target.name, bm25_bodies, args.repeat)
            sparse_bodies = [
                {
                    "size": K,
                    "_source": False,
                    "query": {"neural_sparse": {EMBEDDING: {"query_text": q, "model_id": ids["SPARSE_TOKENIZE"]}}},
                }
                for q in queries
            ]
            sparse_ms = latencies(client, ingested.name, sparse_bodies, args.repeat)
        finally:
            for target in targets:
                target.delete()
            ml = MLCommons(client)
            for model_id in ids.values():  # a node holds at most 10 deployed models: leave none behind
                ml.undeploy(model_id)
                ml.delete(model_id)
    shape = dict(model=spec, documents=len(texts), queries=len(queries), pruning=PRUNING.label)
    report(
        "opensearch_doc_only_query_p50",
        statistics.median(sparse_ms),
        "ms",
        "BM25 match query (same node, same corpus)",
        statistics.median(bm25_ms),
        higher_is_better=False,
        target=0.5,  # within 2x of BM25
        p99_ms=percentile(sparse_ms, 99),
        peer_p99_ms=percentile(bm25_ms, 99),
        requests=len(sparse_ms),
        **shape,
    )
    report(
        "opensearch_bulk_ingest",
        ingest_rate,
        "documents/s",
        "bulk of pre-encoded rank_features",
        pre_rate,
        local_encode_documents_per_second=local_encode_rate,  # what pre-encoding cost here, before the bulk
        **shape,
    )


if __name__ == "__main__":
    main()
