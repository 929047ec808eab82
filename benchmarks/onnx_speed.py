"""ONNX against TorchScript/PyTorch, on the same model in the same run.

- ``onnx_local_encode``: documents/s of ``encode_sparse`` running the model exported to ONNX through
  ONNX Runtime against the same function running it in PyTorch (same texts, batches, threads); the
  largest weight difference is recorded.
- ``onnx_node_ingest``: documents/s of bulk loads through an ingest pipeline whose ``sparse_encoding``
  model is the ONNX package against the same pipeline with the TorchScript package (the node encodes;
  documents keep their 256 largest weights).
- ``onnx_node_query_p50``: bi-encoder ``neural_sparse`` latency (query text sent with the model id: the
  node encodes each query) with the ONNX model against the TorchScript model, on the same index.
- ``onnx_node_predict``: ``_predict`` latency of one query text, ONNX model against TorchScript model.

Both packages come from one model (``ko-sparse package --format onnx`` / default) and are registered
with ``ko-sparse register``. A random model activates most of the vocabulary, and a ``neural_sparse``
query may have at most 1,024 tokens (Lucene's clause limit), so both are packaged with the smallest
model-side ``--prune-ratio`` (0, 0.1, ... 0.9) that keeps every benchmark query within it; the ratio is
recorded. ``--quick`` runs ``tiny:64x2``; ``--size full`` the production-size stand-in
``random:ax-encoder-base``. If nothing answers on ``--host`` and it is the default, the local node is
started and stopped afterwards.
"""

from __future__ import annotations

import getpass
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch

from benchmarks.cluster import PRUNING, K, create_index, latencies, node, percentile, register, remove_models
from benchmarks.common import FULL_MODEL, arguments, paired_timed, per_second, report, tiny_encoder
from ko_sparse.bench.opensearch_systems import EMBEDDING, TEXT, ClusterIndex, bulk_index
from ko_sparse.data.retrieval_sets import medical
from ko_sparse.export.onnx_export import verified_onnx_model
from ko_sparse.export.package import package_model
from ko_sparse.export.sparse_module import eager_module
from ko_sparse.model.encode import encode_sparse
from ko_sparse.opensearch.client import resolve
from ko_sparse.opensearch.ml_commons import MLCommons
from ko_sparse.opensearch.pipelines import ingest_pipeline

MAX_QUERY_TOKENS = 1024  # Lucene's default boolean clause limit, one clause per query token
PRUNE_RATIOS = [round(0.1 * step, 1) for step in range(10)]
FORMATS = ("onnx", "torchscript")


QUICK = dict(model="tiny:64x2", max_length=128, documents=96, batch_size=16, ingest_documents=32)
FULL = dict(model=FULL_MODEL, max_length=256, documents=128, batch_size=16, ingest_documents=64)


def sizes(quick: bool) -> dict:
    """The sizes of ``--quick`` (2-core CPU, tiny model) or of ``--size full`` (the production-size stand-in)."""
    return QUICK if quick else FULL


def query_prune_ratio(encoder, queries: list[str], max_length: int) -> float:
    """The smallest model-side prune ratio that keeps every query within the clause limit."""
    vectors = encode_sparse(encoder, queries, 32, max_length)
    for ratio in PRUNE_RATIOS:
        kept = [int((row.data > ratio * row.data.max()).sum()) if row.nnz else 0 for row in vectors]
        if max(kept) <= MAX_QUERY_TOKENS:
            return ratio
    raise SystemExit(f"no prune ratio up to 0.9 keeps the queries within {MAX_QUERY_TOKENS} tokens")


def local_encoding(encoder, texts: list[str], shape: dict, repeat: int) -> None:
    """ONNX Runtime against PyTorch in ``encode_sparse``, interleaved."""
    onnx_model, verification = verified_onnx_model(eager_module(encoder, 0.0), encoder, shape["max_length"])
    batch, max_length = shape["batch_size"], shape["max_length"]

    def with_onnx():
        return encode_sparse(encoder, texts, batch, max_length, onnx=onnx_model)

    def with_torch():
        return encode_sparse(encoder, texts, batch, max_length)

    onnx_s, torch_s = paired_timed(with_onnx, with_torch, repeat)
    difference = abs(with_onnx() - with_torch()).max()
    report(
        "onnx_local_encode",
        per_second(len(texts), onnx_s),
        "documents/s",
        f"encode_sparse in PyTorch {torch.__version__} (eager, inference mode)",
        per_second(len(texts), torch_s),
        max_abs_difference=float(difference),
        onnxruntime=version("onnxruntime"),
        threads=torch.get_num_threads(),
        verification=verification.summary(),
        **{key: shape[key] for key in ("model", "documents", "max_length", "batch_size")},
    )


def on_the_node(args, encoder, corpus: dict[str, str], queries: list[str], shape: dict) -> None:
    """Package both formats, register them side by side, time ingest and bi-encoder queries."""
    max_length = shape["max_length"]
    ratio = query_prune_ratio(encoder, queries, max_length)
    connection = resolve(args.host, args.user, args.ca_certs, args.insecure, getpass.getpass)
    with tempfile.TemporaryDirectory() as work, node(connection) as client:
        encoder.save(str(Path(work, "model")))
        ids = {}
        pipelines = {name: f"ko-sparse-benchmark-{name}-pipeline" for name in FORMATS}
        indices = {name: f"ko-sparse-benchmark-{name}-ingest" for name in FORMATS}
        searched = "ko-sparse-benchmark-onnx-search"
        try:
            for name in FORMATS:
                package = Path(work, name)
                package_model(
                    Path(work, "model"),
                    package,
                    "bi",
                    max_length,
                    ratio,
                    name=f"ko-sparse-benchmark-{name}",
                    model_format=name,
                )
                ids[name] = register(connection, package)["SPARSE_ENCODING"]
                client.ingest.put_pipeline(
                    id=pipelines[name],
                    body=ingest_pipeline(ids[name], (TEXT, EMBEDDING), PRUNING.kind, PRUNING.value),
                )
            sample = [(doc_id, {TEXT: text}) for doc_id, text in list(corpus.items())[: shape["ingest_documents"]]]

            def ingest(name: str):
                def load() -> None:
                    create_index(client, indices[name])
                    bulk_index(client, indices[name], iter(sample), len(sample), pipeline=pipelines[name])

                return load

            onnx_s, torchscript_s = paired_timed(ingest("onnx"), ingest("torchscript"), args.repeat)
            create_index(client, searched)
            bulk_index(client, searched, iter(sample), len(sample), pipeline=pipelines["onnx"])
            bodies = {
                name: (
                    searched,
                    [
                        {
                            "size": K,
                            "_source": False,
                            "query": {"neural_sparse": {EMBEDDING: {"query_text": q, "model_id": ids[name]}}},
                        }
                        for q in queries
                    ],
                )
                for name in FORMATS
            }
            passes = latencies(client, bodies, args.repeat)
            predicts = predict_latencies(MLCommons(client), ids, queries[:20], args.repeat)
        finally:
            for index in [*indices.values(), searched]:
                ClusterIndex(client, index).delete()
            for pipeline in pipelines.values():
                client.ingest.delete_pipeline(id=pipeline, ignore=[404])
            ml = MLCommons(client)
            remove_models(ml, ids.values())
    common = dict(model=shape["model"], max_length=max_length, model_prune_ratio=ratio, target=1.3)
    report(
        "onnx_node_ingest",
        per_second(len(sample), onnx_s),
        "documents/s",
        "the same pipeline with the TorchScript package (same node, same documents)",
        per_second(len(sample), torchscript_s),
        documents=len(sample),
        pruning=PRUNING.label,
        **common,
    )
    report(
        "onnx_node_query_p50",
        [statistics.median(one) for one in passes["onnx"]],
        "ms",
        "neural_sparse with the TorchScript bi-encoder (same node, index and queries)",
        [statistics.median(one) for one in passes["torchscript"]],
        higher_is_better=False,
        p99_ms=percentile([ms for one in passes["onnx"] for ms in one], 99),
        peer_p99_ms=percentile([ms for one in passes["torchscript"] for ms in one], 99),
        requests_per_pass=len(queries),
        **common,
    )
    report(
        "onnx_node_predict",
        predicts["onnx"],
        "ms",
        "_predict of the TorchScript model (same node, same texts)",
        predicts["torchscript"],
        higher_is_better=False,
        requests_per_pass=min(20, len(queries)),
        **common,
    )


def predict_latencies(ml: MLCommons, ids: dict[str, str], texts: list[str], repeat: int) -> dict[str, list[float]]:
    """Per format, the median milliseconds of ``_predict`` (one text) in each of ``repeat`` alternating passes."""
    medians: dict[str, list[float]] = {name: [] for name in ids}
    for _ in range(repeat):
        for name, model_id in ids.items():
            measured = []
            for text in texts:
                start = time.perf_counter()
                ml.predict(model_id, [text])
                measured.append((time.perf_counter() - start) * 1000)
            medians[name].append(statistics.median(measured))
    return medians


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv, __doc__, "tiny:64x2, 96 documents locally in batches of 16, 32 per bulk load")
    shape = sizes(args.quick)
    encoder = tiny_encoder(shape["model"], shape["max_length"], torch.device("cpu"))
    retrieval = medical()
    texts = list(retrieval.corpus.values())[: shape["documents"]]
    local_encoding(encoder, texts, shape, args.repeat)
    on_the_node(args, encoder, retrieval.corpus, list(retrieval.queries.values()), shape)


if __name__ == "__main__":
    main()
