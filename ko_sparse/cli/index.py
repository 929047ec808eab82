"""``ko-sparse index``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ko_sparse.cli.cluster_options import ClusterOptions, cluster_options
from ko_sparse.cli.options import json_option, max_length_options, model_option, output_option

if TYPE_CHECKING:
    from ko_sparse.data.documents import Fields
    from ko_sparse.model.pruning import Pruning
    from ko_sparse.opensearch.seismic import SeismicParameters
    from ko_sparse.opensearch.two_phase import TwoPhaseParameters


@click.command("index")
@cluster_options
@click.option("--index", "index_name", required=True, help="The index to create or add to.")
@click.option(
    "--corpus",
    required=True,
    help="JSONL, CSV/TSV or Parquet file (optionally .gz), a BEIR folder (corpus.jsonl), or a Hugging Face "
    "dataset id (id or id:config; a local dataset folder works too). Streamed, never loaded whole.",
)
@model_option(
    "A model folder or a SparseEncoder's Hub id (bi-encoder or inference-free): encodes the documents with "
    "--encode local.",
    exists=False,
)
@click.option(
    "--model-id",
    help="A deployed SPARSE_ENCODING model on the cluster: encodes them with --encode pipeline (default: the one "
    "an index made by `ko-sparse register --index` records).",
)
@click.option(
    "--encode",
    type=click.Choice(["local", "pipeline"]),
    help="local: encode here (GPU when present) and send rank_features. pipeline: send text through the "
    "cluster's sparse_encoding ingest pipeline. Default: local with --model, else pipeline.",
)
@click.option("--text-field", default="text", show_default=True, help="Field (column) with the text.")
@click.option(
    "--id-field",
    help="Field with the document id (default: _id, id, doc_id or docid, else the row number; row numbers are "
    "refused into an index that holds another corpus's documents).",
)
@click.option(
    "--title-field", default="title", show_default=True, help="Field with an optional title, searched before the text."
)
@click.option("--split", default="train", show_default=True, help="Hugging Face datasets: the split.")
@click.option(
    "--prune",
    metavar="TYPE:VALUE",
    help="Prune document vectors as neural-search does (max_ratio:0.1, top_k:64, alpha_mass:0.8, abs_value:0.5).",
)
@max_length_options()
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Documents per bulk request and per checkpoint (default 500 local, 50 pipeline).",
)
@click.option(
    "--encode-batch-size",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Local encoding: texts per forward pass at --max-length; shorter texts fill the same number of "
    "tokens (up to 4x as many texts).",
)
@click.option(
    "--concurrency", default=2, show_default=True, type=click.IntRange(min=1), help="Bulk requests in flight."
)
@click.option(
    "--max-retries",
    default=8,
    show_default=True,
    type=click.IntRange(min=0),
    help="Retries (1, 2, 4 ... 30 s apart) of documents refused with 429, 5xx or a timeout, before stopping.",
)
@click.option("--device", default="auto", show_default=True, help="Local encoding: auto (GPU when present), cpu, cuda.")
@click.option(
    "--compile",
    "compile_encoder",
    is_flag=True,
    help="Local encoding: torch.compile the encoder first. On a GPU it then encodes ~1.3x faster (H200, "
    "production size) after a one-off compile of tens of seconds: worth it for large corpora.",
)
@click.option(
    "--method",
    type=click.Choice(["exact", "seismic"]),
    default="exact",
    show_default=True,
    help="exact: a rank_features field, searched exactly. seismic: a sparse_vector field with the SEISMIC method "
    "(OpenSearch >= 3.3), searched approximately; token ids above 32,767 are remapped so every score stays the "
    "exact dot product (within the field's byte quantisation). See docs/opensearch.md.",
)
@click.option(
    "--seismic",
    "seismic_settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="--method seismic: a method parameter (n_postings, cluster_ratio, summary_prune_ratio, "
    "approximate_threshold, quantization_ceiling_ingest, quantization_ceiling_search); repeat for several. "
    "Default: the node's, except approximate_threshold (a tenth of a shard's documents, at most 1,000,000) and "
    "quantization_ceiling_ingest (1.25x the largest weight of the first documents, at least 3).",
)
@click.option(
    "--force-merge",
    is_flag=True,
    help="--method seismic: after the bulk, merge each shard into one segment, so that the whole shard is clustered "
    "and searched approximately once it holds approximate_threshold documents (slow for large indices). The "
    "index is then warmed up (neural-search's warm-up API) either way.",
)
@click.option(
    "--two-phase",
    is_flag=True,
    help="--method exact: search the index in two phases by default (neural-search's two-phase processor in a "
    "search pipeline <index>-two-phase, the index's default): the query's strongest tokens find the candidates, "
    "all its tokens rescore them (exact scores; a document only the weak tokens match can be missed). "
    "`ko-sparse search --no-two-phase` bypasses it.",
)
@click.option(
    "--two-phase-parameter",
    "two_phase_settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="--two-phase: prune_type (max_ratio, alpha_mass, top_k, abs_value; default max_ratio), prune_ratio "
    "(default 0.4), expansion_rate (the rescored window is k x this, default 5.0) or max_window_size (default "
    "10000, at least 50); repeat for several.",
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    help="Shards of a new index (default: what the cluster's index templates give, else 1).",
)
@click.option("--resume", is_flag=True, help="Continue a run that stopped (Ctrl-C, a crash, the node going away).")
@click.option("--restart", is_flag=True, help="Start from the first row even if an earlier run stopped midway.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep each batch's encoded vectors and morphemes here; a re-run with the same texts and settings "
    "reuses them instead of encoding again.",
)
@output_option("Folder for progress.json, failures.jsonl and summary.json (default outputs/index/<index>).")
@json_option("Print the summary as JSON.")
def index_command(
    cluster: ClusterOptions,
    index_name,
    corpus,
    model_path,
    model_id,
    encode,
    text_field,
    id_field,
    title_field,
    split,
    prune,
    max_length,
    query_length,
    batch_size,
    encode_batch_size,
    concurrency,
    max_retries,
    device,
    compile_encoder,
    method,
    seismic_settings,
    force_merge,
    two_phase,
    two_phase_settings,
    shards,
    resume,
    restart,
    cache_dir,
    output_dir,
    as_json,
) -> None:
    """Put a corpus into one OpenSearch index for sparse, BM25 and hybrid search.

    Each document gets its text, its BM25 morphemes (kiwipiepy, as bench) and its rank_features vector
    (encoded here, or by the cluster's ingest pipeline), under a stable _id. Bulk requests run
    --concurrency at a time; 429s and timeouts are retried with backoff; rows that cannot be read and
    documents the cluster refuses go to failures.jsonl with their line and reason. After Ctrl-C, a
    crash or the node going away, the same command with --resume continues where it stopped and ends
    with the same index as an uninterrupted run. The model that built the index is recorded in its
    mapping's _meta with its document and query lengths (the model's unless --max-length / --query-length;
    with --encode pipeline, the registered package's); adding documents with another model is refused.

    \b
    Examples:
      ko-sparse index --host localhost:9200 --index docs --corpus docs.jsonl --model outputs/tiny/best
      ko-sparse index --index docs --corpus docs.jsonl --model outputs/tiny/best --resume
      ko-sparse index --index wiki --corpus miracl/corpus --model outputs/v21.3/best --prune max_ratio:0.1
      ko-sparse index --index docs --corpus docs.parquet --encode pipeline --model-id 3xJd8ZAB2u
      ko-sparse index --index docs --corpus docs.jsonl    # an index made by register --index: its model
      ko-sparse index --index faq --corpus faq.csv --text-field answer --id-field faq_id --title-field question
    """
    from ko_sparse.data.documents import Fields, open_corpus
    from ko_sparse.model.pruning import Pruning

    encode = encode or ("local" if model_path else "pipeline")
    if encode == "local" and not model_path:
        raise click.UsageError("--encode local needs --model (a trained model folder)")
    if resume and restart:
        raise click.UsageError("--resume and --restart exclude each other")
    if encode == "pipeline" and (max_length or query_length):
        raise click.UsageError(
            "--max-length and --query-length apply to --encode local: the cluster's model truncates at the "
            "lengths it was packaged with (ko-sparse package --max-length)"
        )
    try:
        pruning = Pruning.parse(prune) if prune else None
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    if (seismic_settings or force_merge) and method != "seismic":
        raise click.UsageError("--seismic and --force-merge apply to --method seismic; add --method seismic")
    from ko_sparse.opensearch.seismic import SeismicParameters

    seismic = SeismicParameters.parse(seismic_settings) if method == "seismic" else None
    two_phase_parameters = two_phase_option(two_phase, two_phase_settings, method)
    reader = open_corpus(corpus, split)
    connection = cluster.connection()
    if encode == "pipeline" and not model_id:
        model_id = recorded_pipeline_model(connection.client(), index_name)
    if encode == "pipeline" and not model_id:
        raise click.UsageError(
            "--encode pipeline needs --model-id (a deployed SPARSE_ENCODING model), unless --index was made by "
            "`ko-sparse register --index`, which records it"
        )
    output_dir = output_dir or Path("outputs") / "index" / index_name
    options = IndexOptions.from_params(
        click.get_current_context().params,
        fields=Fields(text_field, id_field, title_field or None),
        encode=encode,
        model_id=model_id,
        pruning=pruning,
        seismic=seismic,
        two_phase=two_phase_parameters,
        batch_size=batch_size or (500 if encode == "local" else 50),
        output_dir=output_dir,
        progress_bar=not as_json,
    )
    run = build_run(connection.client(), reader, options)
    summary = run.run(resume=resume, restart=restart)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    skipped_as = "unreadable rows" + (", vectors that cannot be exact" if summary["method"] == "seismic" else "")
    click.echo(
        f"{summary['index']}: {summary['indexed']:,} indexed, {summary['failed']:,} failed, "
        f"{summary['skipped']:,} skipped ({skipped_as}), {summary['retries']:,} retries in "
        f"{summary['seconds']:,.1f} s ({summary['documents_per_second'] or 0:,.1f} docs/s); "
        f"{summary['documents_in_index']:,} documents, {summary['index_size_bytes'] / 1e6:,.1f} MB in the index"
    )
    if summary["method"] == "seismic":
        parameters = ", ".join(f"{name} {value}" for name, value in summary["method_parameters"].items())
        slots = f"; {summary['token_slots']:,} of 32,768 token slots used" if summary["token_slots"] is not None else ""
        click.echo(f"seismic: {parameters}{slots}; ready: {summary['seismic_ready']}")
    if summary["two_phase"]:
        parameters = ", ".join(f"{name} {value}" for name, value in summary["two_phase"].items())
        click.echo(f"two-phase search by default (search pipeline {summary['search_pipeline']}): {parameters}")
    if summary["failed"] or summary["skipped"]:
        click.echo(f"failures and unreadable rows, with their reasons: {summary['failures_file']}")
    click.echo(f"summary: {output_dir / 'summary.json'}")


@dataclasses.dataclass(frozen=True)
class IndexOptions:
    """What one ``ko-sparse index`` run was asked to do."""

    index_name: str
    fields: Fields
    model_path: Path | None = None
    model_id: str | None = None
    encode: str = "local"  # local | pipeline
    pruning: Pruning | None = None
    max_length: int | None = None  # None: the model's recorded document length
    query_length: int | None = None  # None: the model's recorded query length
    batch_size: int = 500
    encode_batch_size: int = 32
    concurrency: int = 2
    max_retries: int = 8
    device: str = "auto"
    compile_encoder: bool = False
    seismic: SeismicParameters | None = None  # --method seismic: the parameters given (None: --method exact)
    force_merge: bool = False
    two_phase: TwoPhaseParameters | None = None  # --two-phase: the search pipeline's parameters
    shards: int | None = None  # None: the cluster's index templates decide
    cache_dir: Path | None = None
    output_dir: Path = Path("outputs/index")
    progress_bar: bool = True

    @classmethod
    def from_params(cls, params: dict, **settled) -> IndexOptions:
        """The command's parameters of the same names, with ``settled`` (values worked out from them) in place."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{**{name: value for name, value in params.items() if name in names}, **settled})


def two_phase_option(two_phase: bool, settings: tuple[str, ...], method: str) -> TwoPhaseParameters | None:
    """``--two-phase`` and its ``--two-phase-parameter`` settings (None without ``--two-phase``), refused in one
    line on a seismic index: SEISMIC is approximate already and the processor prunes rank_features queries."""
    from ko_sparse.opensearch.two_phase import TwoPhaseParameters

    if settings and not two_phase:
        raise click.UsageError("--two-phase-parameter applies to --two-phase; add --two-phase")
    if two_phase and method != "exact":
        raise click.UsageError(
            "--two-phase applies to --method exact (rank_features); a seismic index is approximate already: tune "
            "its search with `ko-sparse search --method-parameter top_n=...` instead"
        )
    return TwoPhaseParameters.parse(settings) if two_phase else None


def recorded_pipeline_model(client, index_name: str) -> str | None:
    """The deployed model that encodes an existing pipeline-encoded index (``register --index`` records it)."""
    from ko_sparse.opensearch.corpus_index import read_meta

    meta = read_meta(client, index_name)
    return meta.model_id if meta is not None and meta.encode == "pipeline" else None


def build_run(client, reader, options: IndexOptions):
    """The index run: the model loaded, the index (and ingest pipeline) prepared and checked."""
    from ko_sparse.data.documents import detect_id_field
    from ko_sparse.model.doc_only import load_model
    from ko_sparse.opensearch.corpus_index import MorphemeField, check_existing, index_body
    from ko_sparse.opensearch.ml_commons import MLCommons
    from ko_sparse.workflows.indexing import (
        IndexRun,
        local_meta,
        pipeline_meta,
        put_ingest_pipeline,
        put_two_phase_pipeline,
    )
    from ko_sparse.workflows.sources import BatchCache, LocalEncoder, SourceBuilder

    o = options
    model = load_model(o.model_path, o.max_length, "--model", o.query_length) if o.model_path else None
    if o.seismic is not None and o.encode == "pipeline":
        check_pipeline_vocabulary(model)
    morphemes = MorphemeField.for_cluster(client)
    if o.encode == "local":
        meta = local_meta(o.model_path, model, o.pruning, morphemes)
        encoder = LocalEncoder(
            model, model.lengths.document, o.encode_batch_size, o.pruning, o.device, o.compile_encoder
        )
    else:
        meta = pipeline_meta(MLCommons(client), o.model_id, o.pruning, morphemes, o.model_path, model)
        encoder = None
    if detect_id_field(reader, o.fields) is None:  # ids are row numbers: only this corpus may write them
        meta = dataclasses.replace(meta, row_ids=reader.source)
    seismic = None
    if o.seismic is not None:
        meta, seismic = seismic_meta(client, reader, o, meta, model, encoder)
    if o.two_phase is not None:
        meta = dataclasses.replace(meta, two_phase=dataclasses.asdict(o.two_phase))
    exists = check_existing(client, o.index_name, meta)
    pipeline = put_ingest_pipeline(client, o.index_name, o.model_id, o.pruning) if o.encode == "pipeline" else None
    search_pipeline = put_two_phase_pipeline(client, o.index_name, o.two_phase) if o.two_phase else None
    run = IndexRun(
        client=client,
        index=o.index_name,
        reader=reader,
        fields=o.fields,
        builder=SourceBuilder(morphemes, encoder),
        meta=meta,
        output_dir=o.output_dir,
        pipeline=pipeline,
        batch_size=o.batch_size,
        concurrency=o.concurrency,
        max_retries=o.max_retries,
        progress_bar=o.progress_bar,
        create=None if exists else index_body(meta, morphemes, pipeline, o.shards, search_pipeline, meta.seismic),
        force_merge=o.force_merge,
    )
    run.builder.seismic = seismic
    if o.cache_dir:
        run.builder.cache = BatchCache(o.cache_dir, run.settings_key())
    return run


def seismic_meta(client, reader, options: IndexOptions, meta, model, encoder):
    """``meta`` with the seismic method and its parameters (an existing index's, else these defaulted for the
    corpus), and the documents' id remapping (None with pipeline encoding); raises one line where the cluster
    or the model cannot take it."""
    from ko_sparse.data.documents import Document, stream_documents
    from ko_sparse.opensearch.corpus_index import check_seismic_support, default_shards, read_meta, read_slots
    from ko_sparse.opensearch.seismic import TokenSlots
    from ko_sparse.workflows.sources import LocalEncoder, SeismicDocuments

    check_seismic_support(client)
    existing = read_meta(client, options.index_name)
    if existing is not None and existing.method == "seismic":
        parameters = existing.method_parameters
    else:  # the pipeline's model is the local one too (check_pipeline_vocabulary): it gives the sample's weights
        sampler = encoder or LocalEncoder(model, model.lengths.document, 32, options.pruning, options.device)
        sample = []
        for item in stream_documents(reader, options.fields, 0):
            if isinstance(item, Document):
                sample.append(item.text)
            if len(sample) == min(options.batch_size, 256):
                break
        peak = float(sampler.encode(sample).max()) if sample else None
        shards = options.shards or default_shards(client, options.index_name)
        parameters = dataclasses.asdict(options.seismic.with_defaults(reader.count(), shards, peak))
    meta = dataclasses.replace(meta, method="seismic", method_parameters=parameters)
    if encoder is None:
        return meta, None
    slots = TokenSlots.for_vocabulary(len(encoder.strings), read_slots(client, options.index_name))
    return meta, SeismicDocuments(slots, meta.seismic.ceilings[0], encoder.strings)


def check_pipeline_vocabulary(model) -> None:
    """--method seismic --encode pipeline: the ingest pipeline writes the model's raw token ids, which no client
    can remap, so the vocabulary must fit the field's ids (and be known: --model)."""
    from ko_sparse.errors import InputError
    from ko_sparse.opensearch.seismic import SLOTS

    size = len(model.encoder.tokenizer) if model else None
    if size is None or size > SLOTS:
        known = f"its vocabulary has {size:,} ids" if size else "without --model its vocabulary is unknown"
        raise InputError(
            "--method seismic --encode pipeline: the cluster's ingest pipeline writes the model's raw token ids, "
            f"which a sparse_vector field keeps apart only below {SLOTS:,}, and {known}; use --encode local "
            "(ids are remapped exactly) or --method exact"
        )
