"""``ko-sparse index`` at scale: 100,000 Korean passages into one index, then queries at that size.

With ``--documents N --method exact,seismic``: exact ``rank_features`` against SEISMIC at N documents on the
ml-cluster profile instead (:mod:`benchmarks.method_scale`).

Passages are built from the bundled texts: each joins two to five sentences drawn (seeded) from
different sources (paraKQC, KorSTS, KorNLI, Question_pair, MIRACL, AutoRAG and Allganize passages cut
into sentences), so no two are the same. The tiny model (``tiny:64x2`` with ``--quick``) encodes them
once: a cold ``ko-sparse index --cache-dir`` run, whose encoding and morpheme-analysis rates are
reported; the timed runs read the cache, so they measure what ``ko-sparse index`` adds on top of
encoding (reading, batching, bulk requests, checkpoints). The random tiny model's decoder bias is
calibrated to 17 active ids per bundled sentence, which gives passages about 130 (a trained model's
order; the default calibration of 200 per sentence activates nearly all 50,000 ids on a passage, which
would make this a benchmark of JSON size); documents keep at most their 128 largest weights.

Figures:
- ``index_scale_bulk``: documents/s of ``ko-sparse index`` (its own process, start-up and model load
  included) against opensearch-py's ``helpers.bulk`` sending the same prepared documents from this
  process in one stream; both into a fresh index, refresh included.
- ``index_scale_client_memory``: peak resident memory of the ``ko-sparse index`` process at the full
  size against half the size (ratio near 1: memory does not grow with the corpus).
- ``index_scale_query_p50``: ``neural_sparse`` (query tokens encoded beforehand) p50 against BM25's on
  the same index; hybrid (neural-search ``hybrid`` query, RRF search pipeline) and the p99s beside.
- ``index_scale_pipeline_ingest``: documents/s of ``ko-sparse index --encode pipeline`` (the cluster
  encodes) on a 2,000-passage sample against ``--encode local`` on the same sample (encoding here).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.cluster import connection_options, latencies, node, percentile, register, remove_models
from benchmarks.common import arguments, measured_process, report
from ko_sparse.data.documents import Fields, open_corpus, stream_documents
from ko_sparse.data.pairs import bundled_pairs
from ko_sparse.data.retrieval_sets import allganize, autorag, miracl
from ko_sparse.export.package import package_model
from ko_sparse.model.doc_only import load_model
from ko_sparse.model.pruning import Pruning
from ko_sparse.model.splade import load_encoder
from ko_sparse.model.tiny import TinyModelSpec, build_tiny_mlm
from ko_sparse.opensearch.client import PASSWORD_ENV, ClusterConnection, resolve
from ko_sparse.opensearch.corpus_index import MorphemeField
from ko_sparse.opensearch.ml_commons import MLCommons
from ko_sparse.opensearch.search import Searcher
from ko_sparse.paths import cache_dir
from ko_sparse.workflows.indexing import IndexRun, batches, local_meta
from ko_sparse.workflows.query_encoder import LocalQueryEncoder
from ko_sparse.workflows.sources import BatchCache, LocalEncoder, SourceBuilder

DOCUMENTS = 100_000
PRUNE = "top_k:128"
ACTIVE_IDS = 17
MAX_LENGTH = 128
BATCH = 500
SAMPLE = 2000
K = 10
SEED = 13
PREFIX = "ko-sparse-benchmark-scale"
SENTENCE_END = re.compile(r"(?<=[.?!다요])\s+")


def sentences_by_source() -> dict[str, list[str]]:
    """Distinct Korean sentences of the bundled texts, by source (pairs as they are; passages cut at sentence
    ends)."""
    pools: dict[str, set[str]] = {}
    for pair in bundled_pairs(min_sts_score=0.0):
        pools.setdefault(pair.origin, set()).update((pair.source, pair.target))
    for name, corpus in (("miracl", miracl().corpus), ("autorag", autorag().corpus), ("allganize", allganize().corpus)):
        for text in corpus.values():
            pools.setdefault(name, set()).update(s.strip() for s in SENTENCE_END.split(text) if len(s.strip()) > 10)
    return {name: sorted(pool) for name, pool in sorted(pools.items())}


def build_passages(count: int, path: Path) -> Path:
    """``count`` distinct passages as JSONL (``_id``, ``text``), each two to five sentences of different sources."""
    if path.is_file():
        return path
    pools = sentences_by_source()
    names = list(pools)
    rng = np.random.default_rng(SEED)
    seen: set[str] = set()
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        while len(seen) < count:
            chosen = rng.choice(len(names), size=int(rng.integers(2, 6)), replace=False)
            text = " ".join(pools[names[i]][int(rng.integers(len(pools[names[i]])))] for i in chosen)
            if text not in seen:
                out.write(json.dumps({"_id": f"p{len(seen):07d}", "text": text}, ensure_ascii=False) + "\n")
                seen.add(text)
    temporary.replace(path)
    return path


def prefix(path: Path, count: int, target: Path) -> Path:
    """The first ``count`` lines of ``path`` (the same passages, so the same cached batches)."""
    if not target.is_file():
        with path.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
            for _, line in zip(range(count), lines, strict=False):
                out.write(line)
    return target


def scale_model(spec: str, work: Path) -> Path:
    """The tiny model of the benchmark (see the module docstring), saved once."""
    base = TinyModelSpec.parse(spec)
    calibrated = TinyModelSpec(base.hidden_size, base.num_layers, initial_active_ids=ACTIVE_IDS)
    target = work / f"model-{calibrated.cache_name}"
    if not target.is_dir():
        mlm = build_tiny_mlm(calibrated, cache_dir() / "models" / calibrated.cache_name)
        load_encoder(mlm, max_length=MAX_LENGTH).save(str(target))
    return target


def ko_sparse_index(connection: ClusterConnection, options: list[str]) -> tuple[dict, float]:
    """``ko-sparse index ... --json`` in its own process: its summary and its peak resident memory (MB)."""
    command = [sys.executable, "-m", "ko_sparse", "index", *connection_options(connection), *options, "--json"]
    environment = {**os.environ, **({PASSWORD_ENV: connection.password} if connection.password else {})}
    run = measured_process(command, env=environment)
    return run.json(), run.peak_mb


def peer_bulk(client, index: str, corpus: Path, builder: SourceBuilder) -> float:
    """opensearch-py's ``helpers.bulk`` with the same prepared documents, one stream: documents/s."""
    from opensearchpy import helpers

    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, body=builder_index_body(builder))
    start = time.perf_counter()

    def actions():
        for batch in batches(stream_documents(open_corpus(str(corpus)), Fields()), BATCH):
            for action in builder.actions(batch.documents):
                yield {"_index": index, **action}

    indexed, errors = helpers.bulk(client, actions(), chunk_size=BATCH, raise_on_error=False)
    client.indices.refresh(index=index)
    seconds = time.perf_counter() - start
    client.indices.delete(index=index, ignore_unavailable=True)
    if errors:
        sys.exit(f"the helpers.bulk peer lost {len(errors)} documents: {errors[:3]}")
    return indexed / seconds


def builder_index_body(builder: SourceBuilder) -> dict:
    from ko_sparse.opensearch.corpus_index import IndexMeta, index_body

    return index_body(IndexMeta("local", "peer", None), builder.morphemes, None, 1)


def cached_builder(client, model_dir: Path, corpus: Path, work: Path) -> SourceBuilder:
    """The documents ``ko-sparse index`` sent, rebuilt from the cache it filled (same settings, same key)."""
    model = load_model(model_dir, MAX_LENGTH)
    pruning = Pruning.parse(PRUNE)
    morphemes = MorphemeField.for_cluster(client)
    builder = SourceBuilder(morphemes, LocalEncoder(model, MAX_LENGTH, 32, pruning, "cpu"))
    meta = local_meta(model_dir, model, pruning, morphemes)
    run = IndexRun(client, "peer", open_corpus(str(corpus)), Fields(), builder, meta, work, batch_size=BATCH)
    builder.cache = BatchCache(work / "cache", run.settings_key())
    return builder


def query_latencies(
    client, index: str, searcher: Searcher, queries: list[str], repeat: int
) -> dict[str, list[list[float]]]:
    """Per mode, ``repeat`` passes of per-request milliseconds (the modes' passes alternate); bodies (query
    tokens, morphemes) are built before timing."""
    searches = {}
    for mode in ("sparse", "bm25", "hybrid"):
        requests = [searcher.request(text, mode, K)[:2] for text in queries]
        pipeline = requests[0][1].get("search_pipeline")
        bodies = [{**body, "_source": False} for body, _ in requests]
        searches[mode] = (index, bodies, {"search_pipeline": pipeline} if pipeline else {})
    return latencies(client, searches, repeat)


def encoding_rates(cold: dict, documents: int, record: Path) -> tuple[float, float]:
    """Documents/s of encoding and of morpheme analysis in the cold run, kept beside the cache: a later run
    that finds everything cached reports the rates measured when the cache was filled."""
    run = cold["this_run"]
    encoded = documents - run["cached_batches"] * BATCH
    if encoded > 0 and run["encode_seconds"] > 0:
        rates = {"encode": encoded / run["encode_seconds"], "analyse": encoded / run["analyse_seconds"]}
        record.write_text(json.dumps({**rates, "documents": encoded}), encoding="utf-8")
    stored = json.loads(record.read_text(encoding="utf-8"))
    return stored["encode"], stored["analyse"]


class Runs:
    """Fresh indices for each ``ko-sparse index`` run, deleted at the end."""

    def __init__(self, client, connection: ClusterConnection) -> None:
        self.client = client
        self.connection = connection
        self.names: set[str] = set()

    def run(self, name: str, options: list[str]) -> tuple[dict, float]:
        index = f"{PREFIX}-{name}"
        self.client.indices.delete(index=index, ignore_unavailable=True)
        self.names.add(index)
        output = tempfile.mkdtemp(prefix=f"{index}-")
        return ko_sparse_index(self.connection, ["--index", index, "--output", output, *options])

    def delete(self) -> None:
        for index in self.names:
            self.client.indices.delete(index=index, ignore_unavailable=True)
            self.client.ingest.delete_pipeline(id=f"{index}-sparse-encoding", ignore=[404])


def pipeline_ingest(
    runs: Runs, package: Path, model_dir: Path, sample: Path, local: list[str], repeat: int
) -> tuple[list[float], list[float]]:
    """Documents/s of ``--encode pipeline`` and of ``--encode local`` on the same sample, ``repeat`` alternating
    runs each (fresh indices)."""
    if not (package / "package.json").is_file():
        package_model(model_dir, package, max_length=MAX_LENGTH)
    ids = register(runs.connection, package)
    through_pipeline = ["--corpus", str(sample), "--encode", "pipeline", "--model-id", ids["SPARSE_ENCODING"],
                        "--prune", PRUNE, "--batch-size", "50"]  # fmt: skip
    pipeline, here = [], []
    try:
        for _ in range(repeat):
            pipeline.append(runs.run("pipeline", through_pipeline)[0]["documents_per_second"])
            here.append(runs.run("local-sample", ["--corpus", str(sample), *local])[0]["documents_per_second"])
    finally:
        ml = MLCommons(runs.client)
        remove_models(ml, ids.values())
    return pipeline, here


def main(argv: list[str] | None = None) -> None:
    if any(option.startswith(("--method", "--documents")) for option in argv or sys.argv[1:]):
        from benchmarks.method_scale import main as methods  # exact against SEISMIC on made vectors

        methods(argv)
        return
    args = arguments(argv, __doc__, "CPU-sized: tiny:64x2")
    spec = "tiny:64x2" if args.quick else "tiny:768x22"
    documents = DOCUMENTS
    work = cache_dir() / "benchmarks" / "index_scale"
    work.mkdir(parents=True, exist_ok=True)
    corpus = build_passages(documents, work / f"passages-{documents}.jsonl")
    half = prefix(corpus, documents // 2, work / f"passages-{documents // 2}.jsonl")
    sample = prefix(corpus, SAMPLE, work / f"passages-{SAMPLE}.jsonl")
    model_dir = scale_model(spec, work)
    connection = resolve(args.host, args.user, args.ca_certs, args.insecure, getpass.getpass)
    local = ["--model", str(model_dir), "--prune", PRUNE, "--max-length", str(MAX_LENGTH), "--batch-size", str(BATCH)]
    cached = [*local, "--cache-dir", str(work / "cache")]
    with node(connection) as client:
        runs = Runs(client, connection)
        try:
            # encode once (cold): what encoding and analysis cost, and the cache the timed runs read
            cold, _ = runs.run("full", ["--corpus", str(corpus), *cached])
            builder = cached_builder(client, model_dir, corpus, work)
            timed, peers, memory = [], [], {documents: [], documents // 2: []}
            for _ in range(args.repeat):  # the two sides alternate
                summary, peak = runs.run("full", ["--corpus", str(corpus), *cached])
                timed.append(summary)
                memory[documents].append(peak)
                peers.append(peer_bulk(client, f"{PREFIX}-peer", corpus, builder))
                memory[documents // 2].append(runs.run("half", ["--corpus", str(half), *cached])[1])
            queries = list(miracl().queries.values())
            searcher = Searcher(client, f"{PREFIX}-full", builder.morphemes, LocalQueryEncoder(builder.encoder.model))
            measured = query_latencies(client, f"{PREFIX}-full", searcher, queries, args.repeat)
            package = work / f"package-{model_dir.name}"
            pipeline_rates, local_rates = pipeline_ingest(runs, package, model_dir, sample, local, args.repeat)
        finally:
            runs.delete()
    final = timed[-1]
    encode_rate, analyse_rate = encoding_rates(cold, documents, work / f"encoding-{model_dir.name}.json")
    rates = [run["documents_per_second"] for run in timed]  # each repeat's, reported as median and range
    model = f"{spec}, {ACTIVE_IDS} active ids per sentence"
    shape = dict(
        model=model,
        documents=documents,
        pruning=PRUNE,
        max_length=MAX_LENGTH,
        batch_size=BATCH,
    )
    report(
        "index_scale_bulk",
        rates,
        "documents/s",
        "opensearch-py helpers.bulk, one stream, same prepared documents",
        peers,
        index_size_bytes=final["index_size_bytes"],
        documents_in_index=final["documents_in_index"],
        encode_documents_per_second=round(encode_rate, 1),
        analyse_documents_per_second=round(analyse_rate, 1),
        cold_run_documents_per_second=cold["documents_per_second"],
        **shape,
    )
    report(
        "index_scale_client_memory",
        memory[documents],
        "MB peak RSS",
        f"the same at {documents // 2:,} documents",
        memory[documents // 2],
        higher_is_better=False,
        **shape,
    )
    every = {mode: [ms for one in passes for ms in one] for mode, passes in measured.items()}
    hybrid = [statistics.median(one) for one in measured["hybrid"]]
    report(
        "index_scale_query_p50",
        [statistics.median(one) for one in measured["sparse"]],
        "ms",
        "BM25 match query (same index)",
        [statistics.median(one) for one in measured["bm25"]],
        higher_is_better=False,
        p99_ms=percentile(every["sparse"], 99),
        peer_p99_ms=percentile(every["bm25"], 99),
        hybrid_p50_ms=statistics.median(hybrid),
        hybrid_p50_ms_range=[min(hybrid), max(hybrid)],
        hybrid_p99_ms=percentile(every["hybrid"], 99),
        requests_per_pass=len(queries),
        **shape,
    )
    report(
        "index_scale_pipeline_ingest",
        pipeline_rates,
        "documents/s",
        "ko-sparse index --encode local (encoding here), same sample",
        local_rates,
        sample=SAMPLE,
        model=model,
        pruning=PRUNE,
    )


if __name__ == "__main__":
    main()
