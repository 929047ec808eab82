"""``ko-sparse index``: a corpus streamed into one index for sparse, BM25 and hybrid search.

The source is read a batch at a time; each batch is prepared here (morphemes, and vectors with local
encoding) while earlier batches are written by ``concurrency`` bulk workers, so memory holds at most
``concurrency + 1`` batches whatever the corpus size. Batches are committed in source order (see
:mod:`ko_sparse.opensearch.progress`); bad rows and refused documents go to ``failures.jsonl`` with
their place and reason; a summary is saved as ``summary.json``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO

from opensearchpy import OpenSearch
from tqdm.auto import tqdm

from ko_sparse.data.documents import BadRow, CorpusReader, Document, Fields, stream_documents
from ko_sparse.errors import Interrupted
from ko_sparse.export.package import Manifest
from ko_sparse.model.doc_only import SparseModel
from ko_sparse.model.hub import model_folder, model_source
from ko_sparse.model.identity import model_fingerprint, vocabulary_fingerprint
from ko_sparse.model.pruning import Pruning
from ko_sparse.model.token_strings import token_strings
from ko_sparse.opensearch import two_phase
from ko_sparse.opensearch.bulk import BulkOutcome, BulkWriter, ClusterUnavailable
from ko_sparse.opensearch.corpus_index import (
    EMBEDDING,
    TEXT,
    IndexMeta,
    IndexMismatchError,
    MorphemeField,
    check_existing,
    index_body,
    save_slots,
)
from ko_sparse.opensearch.ml_commons import DEPLOYED_STATES, MLCommons
from ko_sparse.opensearch.pipelines import ingest_pipeline
from ko_sparse.opensearch.progress import (
    FAILURES_FILE,
    PROGRESS_FILE,
    Progress,
    ResumeError,
    open_failures,
    starting_point,
)
from ko_sparse.workflows.sources import SourceBuilder, Timings

SUMMARY_FILE = "summary.json"


class IndexingStopped(Interrupted):
    """The run stopped before the end of the corpus; what was committed stays, ``--resume`` continues."""


@dataclass
class Batch:
    documents: list[Document] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    end_offset: int = 0


def batches(documents: Iterator[Document | BadRow], size: int) -> Iterator[Batch]:
    """Groups of ``size`` documents with the bad rows met among them; ``end_offset`` is the offset after
    the batch's last row (where a resumed run starts)."""
    batch = Batch()
    for item in documents:
        if isinstance(item, BadRow):
            batch.bad_rows.append(item)
        else:
            batch.documents.append(item)
        batch.end_offset = item.offset + 1
        if len(batch.documents) == size:
            yield batch
            batch = Batch()
    if batch.documents or batch.bad_rows:
        yield batch


class Ledger:
    """Commits batches in source order: their failures to the failures file, then the progress file."""

    def __init__(self, progress: Progress, folder: Path, failures: IO[str], bar: tqdm) -> None:
        self.progress = progress
        self.folder = folder
        self.failures = failures
        self.bar = bar
        self.started = time.perf_counter()
        self.earlier_seconds = progress.seconds

    def commit(self, batch: Batch, outcome: BulkOutcome) -> None:
        progress = self.progress
        self._record(batch, outcome)
        rows = batch.end_offset - progress.next_offset
        progress.next_offset = batch.end_offset
        progress.indexed += outcome.indexed
        progress.failed += len(outcome.failures)
        progress.skipped += len(batch.bad_rows)
        progress.retries += outcome.retries
        for status, count in outcome.retried.items():
            progress.retried[status] = progress.retried.get(status, 0) + count
        progress.seconds = self.earlier_seconds + time.perf_counter() - self.started
        progress.failures_bytes = self.failures.tell()
        progress.save(self.folder)
        self.bar.update(rows)
        self.bar.set_postfix(failed=progress.failed, skipped=progress.skipped, retries=progress.retries)

    def _record(self, batch: Batch, outcome: BulkOutcome) -> None:
        lines = [
            {"offset": row.offset, "where": row.where, "stage": "source", "reason": row.reason}
            for row in batch.bad_rows
        ]
        offsets = {document.doc_id: document.offset for document in batch.documents}
        lines += [
            {
                "offset": offsets.get(failure.doc_id),
                "id": failure.doc_id,
                "stage": "cluster",
                "status": failure.status,
                "reason": failure.reason,
            }
            for failure in outcome.failures
        ]
        self.failures.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        self.failures.flush()


@dataclass
class IndexRun:
    """One ``ko-sparse index`` run into ``index``; ``output_dir`` holds progress, failures and summary."""

    client: OpenSearch
    index: str
    reader: CorpusReader
    fields: Fields
    builder: SourceBuilder
    meta: IndexMeta
    output_dir: Path
    pipeline: str | None = None
    batch_size: int = 500
    concurrency: int = 2
    max_retries: int = 8
    progress_bar: bool = True
    create: dict | None = None  # the body to create the index with, when it does not exist yet
    force_merge: bool = False  # seismic: merge each shard into one segment after the bulk

    def settings_key(self) -> str:
        """What a resumed run must repeat: how documents are built and batched."""
        return json.dumps(
            {
                "meta": {**asdict(self.meta), "ko_sparse_version": None},
                "fields": asdict(self.fields),
                "batch_size": self.batch_size,
            },
            sort_keys=True,
        )

    def run(self, resume: bool = False, restart: bool = False) -> dict:
        """Index from where the last run stopped (``resume``) or from the start; returns the summary."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        progress = starting_point(
            self.output_dir, self.index, self.reader.fingerprint(), self.settings_key(), resume, restart
        )
        resumed_from = progress.next_offset
        self._create_index(progress)
        started = time.perf_counter()
        with (
            open_failures(self.output_dir, progress) as failures,
            ThreadPoolExecutor(self.concurrency) as pool,
            tqdm(
                total=self.reader.count(),
                initial=progress.next_offset,
                desc=f"Indexing {self.index}",
                unit="doc",
                disable=not self.progress_bar,
                dynamic_ncols=True,
            ) as bar,
        ):
            ledger = Ledger(progress, self.output_dir, failures, bar)
            try:
                self._write(pool, ledger)
            except (ClusterUnavailable, KeyboardInterrupt) as error:
                reason = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
                raise IndexingStopped(
                    f"stopped ({reason}) after source row {progress.next_offset:,} with {progress.indexed:,} "
                    f"documents committed; re-run the same command with --resume to continue"
                ) from error
        progress.complete = True
        progress.save(self.output_dir)
        seismic = self.meta.method == "seismic"
        ready = make_searchable(self.client, self.index, self.force_merge, self.progress_bar) if seismic else None
        summary = self._summary(progress, resumed_from, time.perf_counter() - started, ready)
        return summary

    def _create_index(self, progress: Progress) -> None:
        """Create the index when it is missing; a missing index cannot be resumed into."""
        if self.create is None:
            return
        if progress.next_offset and not progress.complete:
            raise ResumeError(
                f"--resume: index {self.index} no longer exists, so the {progress.indexed:,} documents the "
                "earlier run committed are gone; use --restart to index the corpus from the first row"
            )
        self.client.indices.create(index=self.index, body=self.create)

    def _write(self, pool: ThreadPoolExecutor, ledger: Ledger) -> None:
        """Prepare batches here while ``concurrency`` bulk requests run; commit them in source order."""
        writer = BulkWriter(self.client, self.index, self.pipeline, self.batch_size, self.max_retries)
        in_flight: deque[tuple[Batch, Future]] = deque()
        try:
            documents = stream_documents(self.reader, self.fields, ledger.progress.next_offset)
            for batch in batches(documents, self.batch_size):
                actions, refused = self.builder.build(batch.documents) if batch.documents else ([], [])
                batch.bad_rows.extend(refused)
                self._save_slots()
                in_flight.append((batch, pool.submit(writer.write, actions)))
                while in_flight and (len(in_flight) > self.concurrency or in_flight[0][1].done()):
                    ledger.commit(in_flight[0][0], in_flight.popleft()[1].result())
            while in_flight:
                ledger.commit(in_flight[0][0], in_flight.popleft()[1].result())
        finally:
            for _, future in in_flight:
                future.cancel()

    def _save_slots(self) -> None:
        """Record new token slots in the index's ``_meta`` before any document that uses them is written."""
        seismic = self.builder.seismic
        if seismic is not None and seismic.unsaved:
            save_slots(self.client, self.index, self.meta, seismic.slots.as_meta())
            seismic.unsaved = 0

    def _summary(self, progress: Progress, resumed_from: int, seconds: float, ready: dict | None = None) -> dict:
        self.client.indices.refresh(index=self.index, params={"request_timeout": 3600})  # seismic: may cluster
        stats = self.client.indices.stats(index=self.index, metric="store,docs")["indices"][self.index]["primaries"]
        timings: Timings = self.builder.timings
        summary = {
            "index": self.index,
            "corpus": self.reader.location,
            "encode": self.meta.encode,
            "model": self.meta.model or self.meta.model_id,
            "method": self.meta.method,
            "method_parameters": self.meta.seismic.effective() if self.meta.seismic else None,
            "token_slots": len(self.builder.seismic.slots.ids) if self.builder.seismic else None,
            "seismic_ready": ready,
            "two_phase": self.meta.two_phase,
            "search_pipeline": two_phase.pipeline_name(self.index) if self.meta.two_phase else None,
            "indexed": progress.indexed,
            "failed": progress.failed,
            "skipped": progress.skipped,
            "retries": progress.retries,
            "retried_because": progress.retried,
            "seconds": round(progress.seconds, 3),
            "documents_per_second": round(progress.indexed / progress.seconds, 1) if progress.seconds else None,
            "documents_in_index": self.client.count(index=self.index)["count"],
            "index_size_bytes": stats["store"]["size_in_bytes"],
            "runs": progress.runs,
            "resumed_from_row": resumed_from or None,
            "this_run": {
                "seconds": round(seconds, 3),
                "analyse_seconds": round(timings.analyse, 3),
                "encode_seconds": round(timings.encode, 3),
                "cached_batches": timings.cached_batches,
            },
            "failures_file": str(self.output_dir / FAILURES_FILE),
            "progress_file": str(self.output_dir / PROGRESS_FILE),
        }
        (self.output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False), "utf-8")
        return summary


def make_searchable(client: OpenSearch, index: str, force_merge: bool, progress_bar: bool = True) -> dict:
    """A seismic index after the bulk: refreshed, force-merged when asked (segments of at least
    ``approximate_threshold`` documents are clustered and searched approximately), and warmed up (neural-search's
    warm-up API loads the forward index and posting clusters into memory); seconds of each. Every step may take
    minutes (a refresh clusters the new segments of at least ``approximate_threshold`` documents: 5 minutes for
    100,000 documents on a 2-core 4-node cluster), so none is held to the client's request timeout."""
    seconds, long = {}, {"request_timeout": 3600}
    steps = [("refresh", lambda: client.indices.refresh(index=index, params=long))]
    if force_merge:
        steps.append(("force_merge", lambda: client.indices.forcemerge(index=index, max_num_segments=1, params=long)))
    steps.append(("warmup", lambda: warm_up(client, index)))
    for name, step in tqdm(steps, desc="Making the seismic index searchable", disable=not progress_bar):
        start = time.perf_counter()
        step()
        seconds[f"{name}_seconds"] = round(time.perf_counter() - start, 3)
    return seconds


def warm_up(client: OpenSearch, index: str) -> None:
    """neural-search's warm-up API: a seismic index's forward index and posting clusters loaded into its cache
    (minutes for a large index, so not held to the client's request timeout)."""
    client.transport.perform_request("POST", f"/_plugins/_neural/warmup/{index}", params={"request_timeout": 3600})


def local_meta(model_path: Path, model: SparseModel, pruning: Pruning | None, morphemes: MorphemeField) -> IndexMeta:
    """What an index encoded here records: the model folder's hash, its vocabulary's, and its lengths."""
    return IndexMeta(
        encode="local",
        encoder=f"sha256:{model_fingerprint(model_folder(model_path))}",
        vocabulary=vocabulary_fingerprint(token_strings(model.encoder.tokenizer)),
        model=model_source(model_path),
        doc_only=model.doc_only,
        pruning=pruning.label if pruning else None,
        max_length=model.lengths.document,
        query_length=model.lengths.query,
        bm25_analyzer=morphemes.analyzer,
    )


def pipeline_meta(
    ml: MLCommons,
    model_id: str,
    pruning: Pruning | None,
    morphemes: MorphemeField,
    model_path: Path | None = None,
    model: SparseModel | None = None,
) -> IndexMeta:
    """What an index encoded by the cluster records; the model must be a deployed SPARSE_ENCODING model. Its
    lengths are the package's, which the cluster does not tell: ``register --index`` records them, a run
    without the package leaves them None (unknown, never a conflict)."""
    info = ml.api.get_model(model_id=model_id)
    function = str(info.get("algorithm") or info.get("function_name") or "").upper()  # GET model says "algorithm"
    if function != "SPARSE_ENCODING" or info.get("model_state") not in DEPLOYED_STATES:
        raise IndexMismatchError(
            f"--model-id {model_id}: {info.get('name')} is a {function or '?'} model in state "
            f"{info.get('model_state')}; --encode pipeline needs a deployed SPARSE_ENCODING model "
            "(ko-sparse register deploys it)"
        )
    return IndexMeta(
        encode="pipeline",
        encoder=f"ml-commons:{model_id}:{info.get('model_content_hash_value', '')}",
        vocabulary=vocabulary_fingerprint(token_strings(model.encoder.tokenizer)) if model else None,
        model=model_source(model_path) if model_path else info.get("name"),
        model_id=model_id,
        doc_only=model.doc_only if model else False,
        pruning=pruning.label if pruning else None,
        bm25_analyzer=morphemes.analyzer,
    )


def create_registered_index(
    client: OpenSearch,
    index: str,
    model_id: str,
    pipeline: str,
    pruning: Pruning | None,
    manifest: Manifest,
    search_pipeline: str | None = None,
) -> bool:
    """``register --index``: the index ``ko-sparse index --encode pipeline --model-id`` would create, with the
    registered model and the lengths ``manifest`` (its package) records in its ``_meta`` and ``pipeline`` as its
    default; False when it already exists (and was built by the same model)."""
    morphemes = MorphemeField.for_cluster(client)
    meta = replace(
        pipeline_meta(MLCommons(client), model_id, pruning, morphemes),
        doc_only=manifest.mode == "doc-only",
        max_length=manifest.max_length,
        query_length=manifest.query_length,
    )
    if check_existing(client, index, meta):
        return False
    client.indices.create(index=index, body=index_body(meta, morphemes, pipeline, 1, search_pipeline))
    return True


def put_ingest_pipeline(client: OpenSearch, index: str, model_id: str, pruning: Pruning | None) -> str:
    """The index's ``sparse_encoding`` ingest pipeline (text -> embedding), created or updated."""
    name = f"{index}-sparse-encoding"
    prune = (pruning.kind, pruning.value) if pruning else ("none", 0.0)
    client.ingest.put_pipeline(id=name, body=ingest_pipeline(model_id, (TEXT, EMBEDDING), *prune))
    return name


def put_two_phase_pipeline(client: OpenSearch, index: str, parameters: two_phase.TwoPhaseParameters) -> str:
    """The index's two-phase search pipeline (its default: ``index.search.default_pipeline``), created or updated."""
    name = two_phase.pipeline_name(index)
    client.search_pipeline.put(id=name, body=parameters.pipeline())
    return name
