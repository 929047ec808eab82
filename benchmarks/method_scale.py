"""Exact ``rank_features`` against SEISMIC ``sparse_vector`` at 10^5-10^6 documents, on the ml-cluster profile.

``python -m benchmarks index_scale --documents 1000000 --method exact,seismic [--host URL] [--threads 4]
[--queries 300] [--peer/--no-peer] [--keep] [--reuse] [--seismic NAME=VALUE] [--seismic-cache LIMIT]
[--seismic-setting '...']``
(``--host`` defaults to the ml-cluster profile, http://127.0.0.1:9260). ``--keep`` leaves the indices; ``--reuse``
measures them again without the bulk (a 10^6-document build takes an hour); ``--seismic-cache 40%`` sets
neural-search's SEISMIC cache limit (``plugins.neural_search.circuit_breaker.limit``, default 10% of the heap) for
the SEISMIC queries; ``--seismic-setting 'k=100 top_n=40 heap_factor=2'`` (repeatable) replaces the three
``method_parameters`` settings measured; ``--seismic n_postings=17`` (repeatable) sets an index parameter as
``ko-sparse index --seismic`` does (the figure's name then carries it).

Vectors. No trained production Korean model's weights exist offline, so the vectors are made, as follows:

- Token statistics: the bundled Korean texts (the paraKQC, KorSTS, KorNLI and Question_pair pairs; MIRACL,
  AutoRAG and Allganize passages cut into sentences: :func:`benchmarks.index_scale.sentences_by_source`)
  through the A.X tokenizer (50,000 ids). Each sentence gives its distinct ids; each id's document frequency
  over the sentences gives its idf and the expansion distribution (Zipf-like: a few ids in most sentences,
  a long tail), restricted to the ids Korean text uses, as a trained model's expansions are.
- A document: 2-5 sentences of different sources (drawn by a generator seeded with the document's batch), their
  distinct ids, then expansion ids drawn without replacement in proportion to document frequency until it
  holds n ~ U{150..250} ids (more text ids than n: the n heaviest stay). Weights: a text id
  ``min(0.3 + 2.2 x idf/idf_max x LogNormal(0, 0.3), 3)``, an expansion ``0.05 + 0.6 x U(0,1)^2``: rare
  tokens heavy, expansions light, at most 3: the shape of SPLADE's log(1+ReLU) max-pooled weights.
- A query: a bundled retrieval query's ids weighted the same way, plus expansions to m ~ U{20..40} ids.

Documents are generated per batch from their numbers, so every run streams them (client memory does not
grow with the corpus) and each method and the peer index the same vectors.

Per method, into a fresh index with the cluster's shards and replicas (ml-cluster: 3 and 1):

- bulk docs/s: ``ko-sparse index``'s own writer (:class:`IndexRun`: batches of 500, ``--threads`` bulk
  requests in flight, progress ledger, SEISMIC's id remapping and checks) in a child process, with its peak
  RSS; with ``--peer``, opensearch-py's ``helpers.parallel_bulk`` at the same thread count and chunk size
  over the same actions, into another fresh index, for the exact method (the writers do the same for both;
  default: on at 100,000 documents or fewer), ``--repeat`` runs each, alternating.
- time to searchable: the bulk and a refresh; SEISMIC also a force-merge to one segment per shard
  (segments of at least ``approximate_threshold`` documents are clustered then) and the warm-up API.
- index size (primaries, all copies) and node memory: each data node's JVM heap used and its process's
  resident memory (off-heap: resident - committed heap), and SEISMIC's cache in the heap against its limit
  (the ``neural_search`` breaker: size, limit, times it refused to grow), after the queries.
- query p50/p99 at 1 and 4 concurrent clients (client-side wall time per request after a warm-up pass),
  and for SEISMIC, at three ``method_parameters`` settings, recall@10 against the exact index's top 10.

Figures (``N``: the documents): ``index_scale_seismic_query_p50_N`` (SEISMIC at the fastest setting with
recall@10 >= 0.9, or the best recall when none reaches it (``recall_goal_met``), one client, against exact;
its record holds every other measurement) and
``index_scale_exact_bulk_N`` (ko-sparse's writer against ``parallel_bulk``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from opensearchpy import OpenSearch, helpers
from transformers import AutoTokenizer

from benchmarks.cluster import percentile
from benchmarks.common import MIN_REPEATS, measured_process, repeats, report
from benchmarks.index_scale import sentences_by_source
from ko_sparse.data.documents import Fields, open_corpus
from ko_sparse.data.retrieval_sets import allganize, autorag, medical, miracl
from ko_sparse.model.identity import vocabulary_fingerprint
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch.client import PASSWORD_ENV, ClusterConnection
from ko_sparse.opensearch.corpus_index import (
    EMBEDDING,
    IndexMeta,
    MorphemeField,
    default_shards,
    index_body,
    read_meta,
    read_slots,
)
from ko_sparse.opensearch.seismic import SeismicParameters, TokenSlots, query_clause, query_parameters
from ko_sparse.paths import cache_dir
from ko_sparse.resources import TOKENIZER_DIR
from ko_sparse.workflows.indexing import IndexRun, batches, warm_up
from ko_sparse.workflows.sources import SeismicDocuments, SourceBuilder

SEED = 29
BATCH = 500
K = 10
DOCUMENT_IDS = (150, 250)
QUERY_IDS = (20, 40)
MAX_WEIGHT = 3.0
SETTINGS = (  # SEISMIC method_parameters measured for recall and latency
    {"k": 10, "top_n": 10, "heap_factor": 1.0},
    {"k": 10, "top_n": 20, "heap_factor": 1.0},
    {"k": 10, "top_n": 20, "heap_factor": 1.5},
)
PREFIX = "ko-sparse-benchmark-methods"
CACHE_LIMIT = "plugins.neural_search.circuit_breaker.limit"
RECALL_GOAL = 0.9  # the SEISMIC figure's recall@10 against exact
CLUSTER_URL = "http://127.0.0.1:9260"


class TokenStatistics:
    """Sentences as id sets, each id's document frequency and idf, over the bundled Korean texts."""

    def __init__(self) -> None:
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
        self.strings = token_strings(tokenizer)
        self.sources = []
        for sentences in sentences_by_source().values():
            encoded = tokenizer(sentences, add_special_tokens=False)["input_ids"]
            rows = [np.unique([i for i in ids if self.strings[i]]) for ids in encoded]
            self.sources.append([row for row in rows if len(row)])
        frequency = np.zeros(len(self.strings))
        for rows in self.sources:
            for row in rows:
                frequency[row] += 1
        self.used = np.flatnonzero(frequency)
        self.expansion_cdf = np.cumsum(frequency[self.used]) / frequency[self.used].sum()
        idf = np.zeros(len(self.strings))
        idf[self.used] = np.log(frequency.sum() / frequency[self.used])
        self.idf = idf / idf.max()

    def vector(self, rng: np.random.Generator, text_ids: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` ids: ``text_ids`` weighted by rarity (the heaviest when too many), the rest expansions."""
        text = np.minimum(0.3 + 2.2 * self.idf[text_ids] * rng.lognormal(0.0, 0.3, len(text_ids)), MAX_WEIGHT)
        if len(text_ids) >= size:
            keep = np.argsort(-text)[:size]
            return text_ids[keep], text[keep]
        wanted = size - len(text_ids)
        drawn = self.used[np.searchsorted(self.expansion_cdf, rng.random(3 * wanted))]
        extra = np.setdiff1d(np.unique(drawn), text_ids)
        extra = rng.permutation(extra)[:wanted]
        weights = 0.05 + 0.6 * rng.random(len(extra)) ** 2
        return np.concatenate([text_ids, extra]), np.concatenate([text, weights])

    def documents(self, first: int, count: int) -> sp.csr_matrix:
        """Documents ``first`` ... ``first + count - 1`` (``first`` a multiple of BATCH: one generator per batch)."""
        rows, cols, data = [], [], []
        for start in range(first, first + count, BATCH):
            rng = np.random.default_rng([SEED, start // BATCH])
            for row in range(start, min(start + BATCH, first + count)):
                chosen = rng.choice(len(self.sources), size=int(rng.integers(2, 6)), replace=False)
                pools = [self.sources[i] for i in chosen]
                text_ids = np.unique(np.concatenate([pool[int(rng.integers(len(pool)))] for pool in pools]))
                ids, weights = self.vector(rng, text_ids, int(rng.integers(DOCUMENT_IDS[0], DOCUMENT_IDS[1] + 1)))
                rows.append(np.full(len(ids), row - first))
                cols.append(ids)
                data.append(weights)
        matrix = sp.csr_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(count, len(self.strings))
        )
        matrix.sort_indices()
        return matrix

    def queries(self, count: int) -> list[dict[int, float]]:
        """``count`` query vectors from the bundled retrieval queries (each used once, in a seeded order)."""
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER_DIR)
        texts = [q for s in (miracl(), autorag(), allganize(), medical()) for q in s.queries.values()]
        rng = np.random.default_rng([SEED, 1])
        chosen = [texts[i] for i in rng.permutation(len(texts))[:count]]
        vectors = []
        for ids in tokenizer(chosen, add_special_tokens=False)["input_ids"]:
            text_ids = np.unique([i for i in ids if self.strings[i] and self.idf[i] > 0])
            size = int(rng.integers(QUERY_IDS[0], QUERY_IDS[1] + 1))
            ids_, weights = self.vector(rng, text_ids.astype(np.int64), size)
            vectors.append({int(i): float(w) for i, w in zip(ids_, weights, strict=True)})
        return vectors


class SyntheticEncoder:
    """What :class:`SourceBuilder` calls as its encoder: the texts are document numbers."""

    def __init__(self, statistics_: TokenStatistics) -> None:
        self.statistics = statistics_
        self.strings = statistics_.strings

    def encode(self, texts: list[str]) -> sp.csr_matrix:
        first = int(texts[0])
        return self.statistics.documents(first, len(texts))


class WholeText:
    """The BM25 field holds the document number as it is (this benchmark measures the sparse field)."""

    name = "the document number"

    def __call__(self, texts: list[str]) -> list[list[str]]:
        return [[text] for text in texts]


def corpus_file(documents: int) -> Path:
    """JSONL of ``{"_id", "text"}`` where the text is the document's number (the encoder's input)."""
    path = cache_dir() / "benchmarks" / "method_scale" / f"numbers-{documents}.jsonl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            out.writelines(f'{{"_id": "d{n:08d}", "text": "{n}"}}\n' for n in range(documents))
    return path


def method_meta(strings: list[str], method: str, parameters: SeismicParameters | None) -> IndexMeta:
    return IndexMeta(
        encode="local",
        encoder=f"synthetic:seed-{SEED}",
        vocabulary=vocabulary_fingerprint(strings),
        model="benchmarks.method_scale",
        bm25_analyzer=WholeText.name,
        method=method,
        method_parameters=None if parameters is None else parameters.__dict__,
    )


def seismic_parameters(
    stats: TokenStatistics, documents: int, shards: int, given: SeismicParameters | None = None
) -> SeismicParameters:
    """``given`` (``--seismic``) with the defaults ``ko-sparse index --method seismic`` chooses for this corpus
    (its first batch as the sample) for the rest."""
    peak = float(stats.documents(0, BATCH).max())
    return (given or SeismicParameters()).with_defaults(documents, shards, peak)


def run_index(spec: dict) -> dict:
    """Child process: one method's ``IndexRun`` (or the ``parallel_bulk`` peer); its summary."""
    connection = ClusterConnection(spec["host"], password=os.environ.get(PASSWORD_ENV))
    client = connection.client()
    stats = TokenStatistics()
    parameters = SeismicParameters(**spec["parameters"]) if spec["method"] == "seismic" else None
    meta = method_meta(stats.strings, spec["method"], parameters)
    morphemes = MorphemeField(False, WholeText())
    builder = SourceBuilder(morphemes, SyntheticEncoder(stats))
    if parameters is not None:
        builder.seismic = SeismicDocuments(TokenSlots.for_vocabulary(len(stats.strings), None), parameters.ceilings[0],
                                           stats.strings)  # fmt: skip
    reader = open_corpus(str(corpus_file(spec["documents"])))
    body = index_body(meta, morphemes, None, None, seismic=parameters)
    client.indices.delete(index=spec["index"], ignore_unavailable=True)
    if spec.get("peer"):
        return peer_bulk(client, spec, reader, builder, body)
    run = IndexRun(client, spec["index"], reader, Fields(), builder, meta, Path(tempfile.mkdtemp(prefix="methods-")),
                   batch_size=BATCH, concurrency=spec["threads"], progress_bar=False, create=body,
                   force_merge=parameters is not None)  # fmt: skip
    started = time.perf_counter()
    summary = run.run()
    return {**summary, "searchable_seconds": time.perf_counter() - started}


def peer_bulk(client: OpenSearch, spec: dict, reader, builder: SourceBuilder, body: dict) -> dict:
    """opensearch-py's ``parallel_bulk`` with the same thread count and chunk size, the same actions."""
    from ko_sparse.data.documents import stream_documents

    client.indices.create(index=spec["index"], body=body)
    started = time.perf_counter()
    indexed = 0
    actions = (
        {"_index": spec["index"], **action}
        for batch in batches(stream_documents(reader, Fields(), 0), BATCH)  # IndexRun's batches
        for action in builder.actions(batch.documents)
    )
    for ok, _ in helpers.parallel_bulk(client, actions, spec["threads"], BATCH, raise_on_error=False):
        indexed += ok
    client.indices.refresh(index=spec["index"], params={"request_timeout": 3600})
    seconds = time.perf_counter() - started
    return {"documents_indexed": indexed, "documents_per_second": indexed / seconds, "searchable_seconds": seconds}


def index_in_child(connection: ClusterConnection, spec: dict) -> tuple[dict, float]:
    command = [sys.executable, "-m", "benchmarks.method_scale", "--child", json.dumps(spec)]
    environment = {**os.environ, **({PASSWORD_ENV: connection.password} if connection.password else {})}
    run = measured_process(command, env=environment)
    return run.json(), run.peak_mb


def query_bodies(method: str, queries: list[dict[int, float]], strings: list[str], client, index: str) -> list[dict]:
    """The ``neural_sparse`` requests of ``queries`` for an index of ``method`` (SEISMIC: its saved remapping)."""
    if method == "exact":
        tokens = [{strings[i]: w for i, w in q.items()} for q in queries]
        return [{"size": K, "_source": False, "query": {"neural_sparse": {EMBEDDING: {"query_tokens": t}}}}
                for t in tokens]  # fmt: skip
    ceiling = read_meta(client, index).seismic.ceilings[1]
    slots = TokenSlots.for_vocabulary(len(strings), read_slots(client, index))
    clauses = [query_clause(slots.query(query), ceiling) for query in queries]
    return [{"size": K, "_source": False, "query": {"neural_sparse": {EMBEDDING: clause}}} for clause in clauses]


def with_parameters(bodies: list[dict], parameters: dict) -> list[dict]:
    out = []
    for body in bodies:
        clause = {**body["query"]["neural_sparse"][EMBEDDING], "method_parameters": parameters}
        out.append({**body, "query": {"neural_sparse": {EMBEDDING: clause}}})
    return out


def timed_searches(
    connection: ClusterConnection, index: str, bodies: list[dict], clients: int, warm_up: bool = True
) -> tuple[list, list]:
    """Per-request milliseconds with ``clients`` threads (one connection each) sharing the requests, after a
    warm-up pass; and each request's hit ids."""
    local = threading.local()

    def search(body: dict) -> tuple[float, list[str]]:
        if not hasattr(local, "client"):
            local.client = connection.client()
        start = time.perf_counter()
        hits = local.client.search(index=index, body=body)["hits"]["hits"]
        return (time.perf_counter() - start) * 1000, [hit["_id"] for hit in hits]

    with ThreadPoolExecutor(clients) as pool:
        if warm_up:
            list(pool.map(search, bodies))
        results = list(pool.map(search, bodies))
    return [r[0] for r in results], [r[1] for r in results]


def node_memory(client: OpenSearch) -> dict:
    """Each data node's heap used and committed heap, and (a node on this machine) its resident memory (MB)."""
    stats = client.nodes.stats(metric="jvm,breaker")["nodes"]
    pids = {node_id: info["process"]["id"] for node_id, info in client.nodes.info(metric="process")["nodes"].items()}
    memory = {}
    for node_id, node in stats.items():
        if "data" not in node.get("roles", []):
            continue
        heap, committed = node["jvm"]["mem"]["heap_used_in_bytes"], node["jvm"]["mem"]["heap_committed_in_bytes"]
        memory[node["name"]] = {"heap_used_mb": round(heap / 2**20), "heap_committed_mb": round(committed / 2**20)}
        cache = node.get("breakers", {}).get("neural_search")
        if cache:  # SEISMIC's cache (forward index, clustered postings) in the heap, against its limit
            memory[node["name"]] |= {"seismic_cache_mb": round(cache["estimated_size_in_bytes"] / 2**20),
                                     "seismic_cache_limit_mb": round(cache["limit_size_in_bytes"] / 2**20),
                                     "seismic_cache_tripped": cache["tripped"]}  # fmt: skip
        status = Path(f"/proc/{pids.get(node_id)}/status")  # a node on this machine: its resident memory
        if status.is_file():
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
            resident = int(line.split()[1]) * 1024
            memory[node["name"]] |= {
                "resident_mb": round(resident / 2**20),
                "off_heap_mb": round((resident - committed) / 2**20),
            }
    return memory


def index_size(client: OpenSearch, index: str) -> dict:
    row = client.cat.indices(index=index, format="json", bytes="b")[0]
    return {"primaries_bytes": int(row["pri.store.size"]), "total_bytes": int(row["store.size"]),
            "shards": int(row["pri"]), "replicas": int(row["rep"])}  # fmt: skip


def latency_summary(passes: list[list[float]]) -> dict:
    """p50 and p99: the median over passes, and each pass's."""
    summary = {}
    for q in (50, 99):
        values = [percentile(milliseconds, q) for milliseconds in passes]
        summary[f"p{q}_ms"] = round(statistics.median(values), 3)
        summary[f"p{q}_ms_passes"] = [round(value, 3) for value in values]
    return summary


def recall(found: list[list[str]], exact: list[list[str]]) -> float:
    return statistics.mean(len(set(f) & set(e)) / max(len(e), 1) for f, e in zip(found, exact, strict=True))


def measure_method(connection, client, method, args, stats, queries, exact_hits) -> dict:
    """One method end to end: the bulk (and peer), or with ``--reuse`` the index an earlier run kept; then size,
    latency and (SEISMIC) recall."""
    index = f"{PREFIX}-{method}"
    if args.reuse:
        result = reused_index(client, index, method, args.documents)
    else:
        result = bulk_figures(connection, client, method, args, stats)
    result |= index_size(client, index)
    bodies = query_bodies(method, queries, stats.strings, client, index)
    settings = (args.seismic_setting or SETTINGS) if method == "seismic" else ({},)
    with seismic_cache(client, index, args.seismic_cache if method == "seismic" else None) as cache:
        result["queries"] = [query_row(connection, index, bodies, setting, args.repeat, exact_hits, method)
                             for setting in settings]  # fmt: skip
        result["node_memory"] = node_memory(client)
    if cache:
        result["seismic_cache"] = cache
    return result


def bulk_figures(connection, client, method: str, args, stats: TokenStatistics) -> dict:
    """The method's fresh index through ``IndexRun`` (and, for exact with ``--peer``, ``parallel_bulk``
    alternating with it): docs/s, time to searchable and the writer's peak memory."""
    shards = default_shards(client, f"{PREFIX}-{method}")
    given = SeismicParameters.parse(args.seismic or ())
    parameters = seismic_parameters(stats, args.documents, shards, given).__dict__ if method == "seismic" else {}
    index = f"{PREFIX}-{method}"
    spec = {"host": connection.url, "index": index, "documents": args.documents, "method": method,
            "threads": args.threads, "parameters": parameters}  # fmt: skip
    summary, peak_mb = index_in_child(connection, spec)
    rates, peer_rates, peer_peaks = [summary["documents_per_second"]], [], []
    peer_runs = args.repeat if args.peer and method == "exact" else 0  # the writers' difference is the same for both
    for attempt in range(peer_runs):  # the two writers alternate, each into a fresh index
        peer_summary, peer_peak = index_in_child(connection, {**spec, "index": f"{index}-peer", "peer": True})
        peer_rates.append(peer_summary["documents_per_second"])
        peer_peaks.append(peer_peak)
        client.indices.delete(index=f"{index}-peer", ignore_unavailable=True)
        if attempt < args.repeat - 1:
            summary, peak_mb = index_in_child(connection, spec)
            rates.append(summary["documents_per_second"])
    result = {"method": method, "parameters": parameters, "bulk_documents_per_second": rates,
              "searchable_seconds": round(summary["searchable_seconds"], 1), "client_peak_mb": round(peak_mb),
              "documents": client.count(index=index)["count"], "failed": summary["failed"],
              "token_slots": summary["token_slots"], "seismic_ready": summary["seismic_ready"],
              "generate_seconds": summary["this_run"]["encode_seconds"]}  # fmt: skip
    if peer_rates:
        result["parallel_bulk_documents_per_second"] = peer_rates
        result["parallel_bulk_peak_mb"] = round(max(peer_peaks))
    return result


def reused_index(client: OpenSearch, index: str, method: str, documents: int) -> dict:
    """``--reuse``: the index an earlier run kept (``--keep``), which must hold ``documents`` of ``method``."""
    meta = read_meta(client, index) if client.indices.exists(index=index) else None
    count = client.count(index=index)["count"] if meta else 0
    if meta is None or meta.method != method or count != documents:
        found = "no such index" if meta is None else f"{count} documents, method {meta.method}"
        raise SystemExit(f"--reuse: {index} must hold {documents} documents of method {method}, kept by an earlier "
                         f"run with --keep; found {found}")  # fmt: skip
    return {"method": method, "reused": True, "parameters": meta.method_parameters or {}, "documents": count}


def query_row(connection, index: str, bodies: list[dict], setting: dict, repeat: int, exact_hits, method) -> dict:
    """p50/p99 at 1 and 4 clients for one ``method_parameters`` setting; exact keeps its hits, SEISMIC's recall."""
    requests = with_parameters(bodies, setting) if setting else bodies
    row: dict = {"method_parameters": setting}
    for clients in (1, 4):
        passes = [timed_searches(connection, index, requests, clients) for _ in range(repeat)]
        row[f"clients_{clients}"] = latency_summary([milliseconds for milliseconds, _ in passes])
        hits = passes[-1][1]
    if method == "exact":
        exact_hits[:] = hits
    elif exact_hits:
        row["recall_at_10"] = round(recall(hits, exact_hits), 4)
    return row


@contextmanager
def seismic_cache(client: OpenSearch, index: str, limit: str | None) -> Iterator[dict | None]:
    """neural-search's SEISMIC cache limit (``CACHE_LIMIT``, by default 10% of the heap: what does not fit is
    evicted and read again from disk) set transiently to ``limit`` and the index warmed up again for the queries;
    the earlier transient value restored afterwards. None: the cluster's setting as it is."""
    if limit is None:
        yield None
        return
    previous = client.cluster.get_settings(flat_settings=True)["transient"].get(CACHE_LIMIT)
    client.cluster.put_settings(body={"transient": {CACHE_LIMIT: limit}})
    try:
        started = time.perf_counter()
        warm_up(client, index)
        yield {"limit": limit, "warmup_seconds": round(time.perf_counter() - started, 1)}
    finally:
        client.cluster.put_settings(body={"transient": {CACHE_LIMIT: previous}})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--method", default="exact,seismic", help="comma-separated: exact, seismic (exact first)")
    parser.add_argument("--threads", type=int, default=4, help="bulk requests in flight (both writers)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--repeat", type=repeats, default=MIN_REPEATS, help="query passes; bulk runs per writer")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--host", default=CLUSTER_URL)
    parser.add_argument("--keep", action="store_true", help="keep the indices afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure the indices a --keep run left (no bulk)")
    parser.add_argument("--seismic", metavar="NAME=VALUE", action="append",
                        help="a SEISMIC index parameter, as `ko-sparse index --seismic` (repeatable)")  # fmt: skip
    parser.add_argument("--seismic-cache", metavar="LIMIT",
                        help=f"{CACHE_LIMIT} (e.g. 40%%) for the SEISMIC queries; default: the cluster's")  # fmt: skip
    parser.add_argument("--seismic-setting", metavar="'k=10 top_n=20 heap_factor=1.5'", action="append",
                        type=lambda text: query_parameters(text.split()),
                        help="SEISMIC method_parameters to measure (repeatable); default: SETTINGS")  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_index(json.loads(args.child))))
        return
    args.peer = args.documents <= 100_000 if args.peer is None else args.peer
    methods = sorted(set(args.method.split(",")), key=("exact", "seismic").index)
    connection = ClusterConnection(args.host, password=os.environ.get(PASSWORD_ENV))
    client = connection.client()
    stats = TokenStatistics()
    queries = stats.queries(args.queries)
    exact_hits: list[list[str]] = []
    results = []
    try:
        for method in methods:
            results.append(measure_method(connection, client, method, args, stats, queries, exact_hits))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            for method in methods:
                client.indices.delete(index=f"{PREFIX}-{method}", ignore_unavailable=True)
    publish(results, args, stats, queries)


def publish(results: list[dict], args, stats: TokenStatistics, queries: list[dict]) -> None:
    """The figures (see the module docstring); the query figure's record carries every measurement."""
    shape = {"documents": args.documents, "threads": args.threads, "queries": len(queries), "query_passes": args.repeat,
             "vocabulary_ids_used": len(stats.used), "seismic_cache": args.seismic_cache,
             "reused": args.reuse}  # fmt: skip
    by_method = {r["method"]: r for r in results}
    exact, seismic = by_method.get("exact"), by_method.get("seismic")
    if exact and seismic:
        best = chosen_setting(seismic["queries"])
        ours, theirs = best["clients_1"], exact["queries"][0]["clients_1"]
        report(figure_name(args), ours["p50_ms_passes"], "ms",
               "exact neural_sparse on rank_features, same queries and cluster",
               theirs["p50_ms_passes"], higher_is_better=False, target=5.0, chosen=best,
               recall_goal_met=best.get("recall_at_10", 0) >= RECALL_GOAL,
               **shape, results=results)  # fmt: skip
    for result in results:
        if "parallel_bulk_documents_per_second" in result:
            name = f"index_scale_{result['method']}_bulk_{args.documents}"
            report(name, result["bulk_documents_per_second"], "documents/s",
                   f"opensearch-py helpers.parallel_bulk, {args.threads} threads, chunk {BATCH}",
                   result["parallel_bulk_documents_per_second"], target=1.2, **shape,
                   client_peak_mb=result["client_peak_mb"], peer_peak_mb=result["parallel_bulk_peak_mb"])  # fmt: skip


def figure_name(args) -> str:
    """``index_scale_seismic_query_p50_N``; an index built with ``--seismic`` parameters names them, so an
    experiment never stands in for the defaults' figure."""
    given = "".join(f"_{setting.replace('=', '-')}" for setting in args.seismic or ())
    return f"index_scale_seismic_query_p50_{args.documents}{given}"


def chosen_setting(rows: list[dict]) -> dict:
    """The SEISMIC setting the figure reports: the fastest (one client) with recall@10 >= RECALL_GOAL or, when
    none reaches it, the one with the highest recall (never a fast setting that misses most of exact's hits)."""
    good = [row for row in rows if row.get("recall_at_10", 0) >= RECALL_GOAL]
    if good:
        return min(good, key=lambda row: row["clients_1"]["p50_ms"])
    return max(rows, key=lambda row: row.get("recall_at_10", 0))


if __name__ == "__main__":
    main()
