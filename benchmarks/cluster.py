"""OpenSearch speed on the local node: ``neural_sparse`` query latency against BM25 (doc-only: the query
tokenised and IDF-weighted on the node; bi-encoder: the query encoded by the model on the node), bulk
indexing through the ingest pipeline against local encoding + a bulk of the encoded ``rank_features``, and
the pipeline whose ``sparse_encoding`` processor batches documents (``INGEST_BATCH_SIZE`` per model call, as
``ko-sparse register`` and ``index`` write it) against the same pipeline at neural-search's default of one.

The model is a doc-only package of the benchmark's encoder (``tiny:64x2`` with ``--quick``, the
production-size stand-in at full size: SPLADE document encoder + IDF query weights over the corpus),
packaged and registered with ko-sparse's own commands. The random models activate far more ids on long
documents than a trained one, so documents are cut to their 256 largest weights (``top_k``, a trained
model's document size), at ingest and for the locally encoded peer alike. Both sides of each figure are
timed the same way: the same warm-up, then alternating repeats. Queries go to the cluster as text, as
users send them: BM25 over the same morphemes as ``ko-sparse bench``, and ``neural_sparse`` with the
tokenizer model's id (doc-only) or the encoder's (bi-encoder). If nothing answers on ``--host`` and it
is the default, the node is started with ``opensearch/local.sh`` and stopped afterwards.
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
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from opensearchpy import OpenSearch

from benchmarks.common import FULL_MODEL, arguments, paired_timed, per_second, report, tiny_encoder
from ko_sparse.bench.opensearch_systems import ClusterIndex, OpenSearchBM25, bulk_index
from ko_sparse.data.retrieval_sets import medical
from ko_sparse.export.package import package_model
from ko_sparse.model.doc_only import save_doc_only
from ko_sparse.model.encode import encode_sparse
from ko_sparse.model.idf import idf_vector
from ko_sparse.model.pruning import Pruning
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.client import PASSWORD_ENV, ClusterConnection, resolve
from ko_sparse.opensearch.corpus_index import EMBEDDING, TEXT
from ko_sparse.opensearch.ml_commons import MLCommons
from ko_sparse.opensearch.pipelines import INGEST_BATCH_SIZE, ingest_pipeline

LOCAL_NODE = Path(__file__).resolve().parent.parent / "opensearch" / "local.sh"
PRUNING = Pruning("top_k", 256)
INGEST_SAMPLE = 200  # documents per timed bulk load (the pipeline encodes on the node: a few per second)
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


def connection_options(connection: ClusterConnection) -> list[str]:
    """The command-line options that reach ``connection`` (the password goes through the environment)."""
    options = ["--host", connection.host]
    if connection.user:
        options += ["--user", connection.user]
    if connection.ca_certs:
        options += ["--ca-certs", connection.ca_certs]
    return options + (["--insecure"] if connection.insecure else [])


def register(connection: ClusterConnection, package: Path) -> dict[str, str]:
    """``ko-sparse register`` (reuses an identical model already there); function name -> model id.

    The password reaches it through ``OPENSEARCH_PASSWORD`` in its environment, as for any user."""
    command = [sys.executable, "-m", "ko_sparse", "register", *connection_options(connection), "--model", str(package)]
    output = subprocess.run(
        [*command, "--model-group", "ko-sparse-benchmarks", "--configure-cluster", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **({PASSWORD_ENV: connection.password} if connection.password else {})},
    ).stdout
    return {model["function_name"]: model["model_id"] for model in json.loads(output)["models"]}


def remove_models(ml: MLCommons, model_ids: Iterable[str]) -> None:
    """Undeploy and delete the benchmark's models: a node holds at most 10 deployed models, leave none behind."""
    for model_id in model_ids:
        ml.remove(model_id)


def search_pass(client: OpenSearch, index: str, bodies: list[dict], params: dict | None = None) -> list[float]:
    """Milliseconds of each search request of one pass (client side, including query-time work on the node)."""
    measured = []
    for body in bodies:
        start = time.perf_counter()
        client.search(index=index, body=body, params=params or {})
        measured.append((time.perf_counter() - start) * 1000)
    return measured


def latencies(client: OpenSearch, searches: dict[str, tuple], repeat: int) -> dict[str, list[list[float]]]:
    """Per system, ``repeat`` passes of its requests; the systems' passes alternate (the same warm-up first).

    ``searches``: name -> ``(index, bodies)`` or ``(index, bodies, params)`` (e.g. a ``search_pipeline``)."""
    for index, bodies, *params in searches.values():
        for body in bodies[:5]:
            client.search(index=index, body=body, params=params[0] if params else {})
    passes: dict[str, list[list[float]]] = {name: [] for name in searches}
    for _ in range(repeat):
        for name, (index, bodies, *params) in searches.items():
            passes[name].append(search_pass(client, index, bodies, params[0] if params else None))
    return passes


def neural_sparse_bodies(queries: list[str], model_id: str) -> list[dict]:
    """``neural_sparse`` requests with the query text: the node runs ``model_id`` on it (the SPARSE_TOKENIZE
    model: IDF-weighted tokens, doc-only; the SPARSE_ENCODING model: the encoder, as a bi-encoder does)."""
    return [
        {"size": K, "_source": False, "query": {"neural_sparse": {EMBEDDING: {"query_text": q, "model_id": model_id}}}}
        for q in queries
    ]


def percentile(values: list[float], q: int) -> float:
    return float(np.percentile(values, q))


def create_index(client: OpenSearch, index: str) -> None:
    ClusterIndex(client, index).delete()
    mapping = {EMBEDDING: {"type": "rank_features"}, TEXT: {"type": "text", "index": False}}
    client.indices.create(
        index=index,
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"properties": mapping}},
    )


def load_through(client: OpenSearch, index: str, corpus: dict[str, str], pipeline: str) -> None:
    """A fresh index, the texts bulk-loaded through the ingest pipeline (the node encodes), refreshed."""
    create_index(client, index)
    plain = [(doc_id, {TEXT: text}) for doc_id, text in corpus.items()]
    bulk_index(client, index, iter(plain), len(plain), pipeline=pipeline)


def ingest_rates(client: OpenSearch, corpus: dict[str, str], pipeline: str, encode, repeat: int):
    """Documents/s of interleaved bulk loads into fresh indices: texts through the ingest pipeline (the node
    encodes) against local encoding + a bulk of the pre-encoded ``rank_features`` (what a user would run
    instead); refresh included on both sides."""

    def encoded_here() -> None:
        create_index(client, "ko-sparse-benchmark-pre")
        documents = encode(corpus)
        bulk_index(client, "ko-sparse-benchmark-pre", iter(documents), len(documents))

    def through_pipeline() -> None:
        load_through(client, "ko-sparse-benchmark-ingest", corpus, pipeline)

    pipeline_s, local_s = paired_timed(through_pipeline, encoded_here, repeat, warmup=0)
    return per_second(len(corpus), pipeline_s), per_second(len(corpus), local_s)


def batching_rates(client: OpenSearch, corpus: dict[str, str], batched: str, single: str, repeat: int):
    """Documents/s through the pipeline whose processor batches (``INGEST_BATCH_SIZE`` documents per model
    call) against the same pipeline at neural-search's default of one call per document."""
    index = "ko-sparse-benchmark-ingest"
    batched_s, single_s = paired_timed(
        lambda: load_through(client, index, corpus, batched),
        lambda: load_through(client, index, corpus, single),
        repeat,
    )
    return per_second(len(corpus), batched_s), per_second(len(corpus), single_s)


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "CPU-sized: tiny:64x2, documents cut to 256 tokens")
    spec, max_length = ("tiny:64x2", 256) if args.quick else (FULL_MODEL, 512)
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

        def encode(corpus: dict[str, str]) -> list[tuple[str, dict]]:
            vectors = PRUNING.apply(encode_sparse(encoder, list(corpus.values()), 32, max_length))
            return [
                (
                    doc_id,
                    {
                        EMBEDDING: {
                            strings[i]: float(w) for i, w in zip(row.indices, row.data, strict=True) if strings[i]
                        }
                    },
                )
                for doc_id, row in zip(corpus, vectors, strict=True)
            ]

        bm25 = OpenSearchBM25(client, "ko-sparse-benchmark-bm25")
        searched = ClusterIndex(client, "ko-sparse-benchmark-search")
        pipeline, single = "ko-sparse-benchmark-pipeline", "ko-sparse-benchmark-pipeline-single"
        index_names = [bm25.target.name, searched.name, "ko-sparse-benchmark-ingest", "ko-sparse-benchmark-pre"]
        try:
            for name, batch_size in ((pipeline, INGEST_BATCH_SIZE), (single, 1)):
                body = ingest_pipeline(
                    ids["SPARSE_ENCODING"], (TEXT, EMBEDDING), PRUNING.kind, PRUNING.value, batch_size
                )
                client.ingest.put_pipeline(id=name, body=body)
            sample = dict(list(retrieval.corpus.items())[:INGEST_SAMPLE])
            ingest_rate, local_rate = ingest_rates(client, sample, pipeline, encode, args.repeat)
            batched_rate, single_rate = batching_rates(client, sample, pipeline, single, args.repeat)
            create_index(client, searched.name)
            bulk_index(client, searched.name, iter(encode(retrieval.corpus)), len(texts))
            bm25.target.delete()
            bm25.index(retrieval.corpus)
            queries = list(retrieval.queries.values())
            # BM25's bodies are tokenised before timing (kiwipiepy runs client side): BM25's best case
            passes = latencies(
                client,
                {
                    "sparse": (searched.name, neural_sparse_bodies(queries, ids["SPARSE_TOKENIZE"])),
                    "bi": (searched.name, neural_sparse_bodies(queries, ids["SPARSE_ENCODING"])),
                    "bm25": (bm25.target.name, [bm25.query_body(q, K) for q in queries]),
                },
                args.repeat,
            )
        finally:
            for name in index_names:
                ClusterIndex(client, name).delete()
            for name in (pipeline, single):
                client.ingest.delete_pipeline(id=name, ignore=[404])
            ml = MLCommons(client)
            remove_models(ml, ids.values())
    shape = dict(model=spec, documents=len(texts), queries=len(queries), pruning=PRUNING.label)
    bm25_ms = passes["bm25"]
    for name, system, target in (("doc_only", "sparse", 0.5), ("bi", "bi", None)):  # doc-only: within 2x of BM25
        report(
            f"opensearch_{name}_query_p50",
            [statistics.median(one) for one in passes[system]],
            "ms",
            "BM25 match query (same node, same corpus)",
            [statistics.median(one) for one in bm25_ms],
            higher_is_better=False,
            target=target,
            p99_ms=percentile([ms for one in passes[system] for ms in one], 99),
            peer_p99_ms=percentile([ms for one in bm25_ms for ms in one], 99),
            requests_per_pass=len(queries),
            **shape,
        )
    report(
        "opensearch_bulk_ingest",
        ingest_rate,
        "documents/s",
        "local encoding (ko-sparse, this machine) + bulk of the rank_features",
        local_rate,
        **{**shape, "documents": INGEST_SAMPLE, "ingest_batch_size": INGEST_BATCH_SIZE},
    )
    report(
        "opensearch_pipeline_batching",
        batched_rate,
        "documents/s",
        "the same ingest pipeline at neural-search's default batch_size 1 (a model call per document)",
        single_rate,
        **{**shape, "documents": INGEST_SAMPLE, "ingest_batch_size": INGEST_BATCH_SIZE},
    )


if __name__ == "__main__":
    main()
