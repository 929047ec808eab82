"""``ko-sparse search``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from ko_sparse.cli.cluster_options import ClusterOptions, cluster_options
from ko_sparse.cli.options import json_option, max_length_options, model_option

SNIPPET = 160


@click.command("search")
@cluster_options
@click.argument("texts", nargs=-1)
@click.option("--index", "index_name", required=True, help="An index built by `ko-sparse index`.")
@click.option(
    "--mode",
    type=click.Choice(["sparse", "bm25", "hybrid"]),
    default="sparse",
    show_default=True,
    help="sparse: neural_sparse with the model's query tokens. bm25: the morpheme field. hybrid: both, fused on "
    "the cluster.",
)
@click.option("--k", default=10, show_default=True, type=click.IntRange(min=1), help="Documents per query.")
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Many queries: one per line, or JSONL with text (or query) and an optional id.",
)
@model_option(
    "Encode queries with this model: a folder or a SparseEncoder's Hub id (default: the one recorded in the index).",
    exists=False,
)
@max_length_options(documents=False)
@click.option(
    "--model-id",
    help="Encode queries with this deployed model (_predict; a SPARSE_TOKENIZE model for doc-only indices).",
)
@click.option(
    "--fusion",
    type=click.Choice(["rrf", "min_max"]),
    default="rrf",
    show_default=True,
    help="hybrid: reciprocal rank fusion (score-ranker-processor) or min-max normalisation + mean.",
)
@click.option(
    "--method-parameter",
    "method_settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="A seismic index: a neural_sparse method parameter, k (documents the approximate search keeps per "
    "shard, default 10), top_n (query tokens that pick the posting lists, default 10) or heap_factor (above 1: "
    "more candidates, higher recall, slower; default 1.0); repeat for several.",
)
@click.option(
    "--filter",
    "filter_json",
    metavar="JSON",
    help="A seismic index: a query clause (JSON) that documents must match, applied inside the approximate "
    'search (method_parameters.filter), e.g. \'{"ids": {"values": ["d1", "d2"]}}\'.',
)
@click.option(
    "--two-phase/--no-two-phase",
    "two_phase",
    default=None,
    help="An index built with --two-phase searches in two phases by default (--mode sparse); --no-two-phase "
    "bypasses its search pipeline (search_pipeline=_none: every query token searched), to compare.",
)
@click.option("--tokens", default=15, show_default=True, type=click.IntRange(min=0), help="Query tokens to print.")
@json_option("Print the results as JSON (all tokens, full texts).")
def search_command(
    cluster: ClusterOptions,
    texts,
    index_name,
    mode,
    k,
    queries_file,
    model_path,
    query_length,
    model_id,
    fusion,
    method_settings,
    filter_json,
    two_phase,
    tokens,
    as_json,
) -> None:
    """Search an index built by `ko-sparse index`, and show why each document came back.

    Prints the ranked documents with their scores. For sparse search it also prints the query's
    tokens ('+': an expansion, not in the query's words) and, per hit, every matched token with its
    contribution, query weight x stored document weight, from the cluster's own explanation: they
    add up to the hit's score. BM25 hits list each matched morpheme's score.

    \b
    Examples:
      ko-sparse search --host localhost:9200 --index docs "당뇨병 치료"
      ko-sparse search --index docs --mode hybrid --k 5 "고혈압 약은 언제 먹어야 하나요"
      ko-sparse search --index docs --mode bm25 --queries queries.txt --json > results.json
    """
    from ko_sparse.data.documents import read_queries

    queries = [(str(n), text) for n, text in enumerate(texts, start=1)]
    queries += read_queries(queries_file) if queries_file else []
    if not queries:
        raise click.UsageError('give a query ("당뇨병 치료") or --queries FILE')
    connection = cluster.connection()
    query_model = QueryModel(model_path, model_id, query_length)
    method_parameters = seismic_method_parameters(method_settings, filter_json)
    searcher = build_searcher(connection.client(), index_name, mode, query_model, fusion, method_parameters, two_phase)
    results = [(qid, searcher.search(text, mode, k)) for qid, text in queries]
    if as_json:
        payload = [{"id": qid, **asdict(result)} for qid, result in results]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for qid, result in results:
        show(qid, result, tokens)


@dataclass(frozen=True)
class QueryModel:
    """What encodes the queries: a model folder or a deployed model (None: the one the index records)."""

    path: Path | None = None
    model_id: str | None = None
    query_length: int | None = None  # None: the length the index records, else the model's


def seismic_method_parameters(settings: tuple[str, ...], filter_json: str | None) -> dict | None:
    """``--method-parameter`` and ``--filter`` as neural_sparse ``method_parameters`` (None when neither is given)."""
    from ko_sparse.errors import InputError
    from ko_sparse.opensearch.seismic import query_parameters

    if not settings and not filter_json:
        return None
    parameters = query_parameters(settings)
    if filter_json:
        try:
            parameters["filter"] = json.loads(filter_json)
        except json.JSONDecodeError as error:
            raise InputError(f"--filter: not JSON ({error.msg} at character {error.pos}): {filter_json}") from None
    return parameters


def build_searcher(
    client,
    index_name,
    mode,
    query_model: QueryModel,
    fusion,
    method_parameters: dict | None = None,
    two_phase: bool | None = None,
):
    """A searcher for the index; the query encoder (and its query length) comes from the options or the
    index's ``_meta``; a seismic index also needs the model folder (its token ids). ``two_phase``: None, the
    index's default search pipeline; False, none (``_none``); True, the two-phase one, which it must have."""
    from ko_sparse.errors import ClusterError, InputError
    from ko_sparse.opensearch.corpus_index import MorphemeField, read_meta
    from ko_sparse.opensearch.ml_commons import MLCommons
    from ko_sparse.opensearch.query_tokens import max_clause_count
    from ko_sparse.opensearch.search import ClusterQueryEncoder, Searcher

    meta = read_meta(client, index_name)
    if meta is None:
        raise ClusterError(f"index {index_name} does not exist (build it with ko-sparse index)")
    encoder = None
    if mode != "bm25":
        model_path, model_id = query_model.path, query_model.model_id
        recorded = recorded_model(meta.model)
        if model_path or (recorded and not model_id):
            encoder = local_query_encoder(model_path or recorded, query_model.query_length or meta.query_length)
        elif model_id or (meta.model_id and not meta.doc_only):
            encoder = ClusterQueryEncoder(MLCommons(client), model_id or meta.model_id)
        else:
            raise InputError(
                f"--mode {mode} needs the query model: give --model (the model folder) or --model-id "
                f"(index {index_name} was built by {meta.model or meta.model_id}, which is not available here)"
            )
    if method_parameters is not None and meta.method != "seismic":
        raise InputError(
            f"--method-parameter and --filter apply to a seismic index; {index_name} was built with --method "
            f"{meta.method} (exact search: nothing to tune)"
        )
    seismic = seismic_query(client, index_name, meta, encoder, method_parameters) if meta.method == "seismic" else None
    morphemes = MorphemeField(meta.bm25_analyzer == "nori")
    pipeline = pipeline_choice(index_name, meta, mode, two_phase)
    return Searcher(client, index_name, morphemes, encoder, max_clause_count(client), fusion, seismic, pipeline)


def pipeline_choice(index_name, meta, mode: str, two_phase: bool | None):
    """``--two-phase/--no-two-phase`` as the search pipeline of each request; --two-phase is refused in one line
    where it cannot apply (an index without it, or a hybrid query, which neural-search does not prune)."""
    from ko_sparse.errors import InputError
    from ko_sparse.opensearch.search import PipelineChoice
    from ko_sparse.opensearch.two_phase import BYPASS

    parameters = meta.two_phase_parameters
    if two_phase and parameters is None:
        raise InputError(
            f"--two-phase: index {index_name} was built without it (--method {meta.method}); rebuild an exact index "
            "with `ko-sparse index --two-phase` to search it in two phases"
        )
    if two_phase and mode != "sparse":
        raise InputError(
            f"--two-phase applies to --mode sparse: neural-search does not prune a {mode} query's sparse side"
        )
    described = parameters.describe() if parameters is not None else None
    return PipelineChoice(BYPASS if two_phase is False else None, described)


def seismic_query(client, index_name, meta, encoder, method_parameters):
    """How to query a seismic index: its remapping and the vocabulary of the local query model."""
    from ko_sparse.errors import InputError
    from ko_sparse.opensearch.corpus_index import read_slots
    from ko_sparse.opensearch.search import SeismicQuery
    from ko_sparse.opensearch.seismic import TokenSlots

    if encoder is not None and not hasattr(encoder, "token_ids"):
        raise InputError(
            f"index {index_name} is a seismic index, keyed by token id: give --model (the model folder) so the "
            "query's token ids are computed here; a deployed model (--model-id) gives token strings"
        )
    strings = encoder.strings if encoder is not None else []
    slots = TokenSlots.for_vocabulary(len(strings), read_slots(client, index_name))
    return SeismicQuery(meta.seismic, slots, strings, method_parameters or {})


def recorded_model(name: str | None) -> str | None:
    """The model an index records, when it is here: a folder, or a Hub id in the Hugging Face cache."""
    from ko_sparse.model.hub import in_cache

    if name and (Path(name).is_dir() or ("/" in name and in_cache(name))):
        return name
    return None


def local_query_encoder(model_path: str | Path, query_length: int | None):
    """The model on this machine as the query encoder (``query_length``: None for the model's own); imports
    torch, so only when asked for."""
    from ko_sparse.model.doc_only import load_model
    from ko_sparse.workflows.query_encoder import LocalQueryEncoder

    return LocalQueryEncoder(load_model(model_path, setting="--model", query_length=query_length))


def show(qid: str, result, tokens: int) -> None:
    click.echo(f"[{qid}] {result.query}  ({result.mode}, {len(result.hits)} hits, {result.milliseconds:.0f} ms)")
    if result.query_tokens and tokens:
        shown = list(result.query_tokens.items())[:tokens]
        words = result.query.replace(" ", "")
        listing = "  ".join(
            f"{'' if token.removeprefix('##') in words else '+'}{token} {weight:.2f}" for token, weight in shown
        )
        click.echo(f"  query tokens ({len(shown)} of {len(result.query_tokens)}): {listing}")
    if result.query_terms and result.mode != "sparse":
        click.echo(f"  BM25 terms: {' '.join(result.query_terms)}")
    for note in result.notes:
        click.echo(f"  note: {note}")
    for hit in result.hits:
        title = f"  [{hit.title}]" if hit.title else ""
        click.echo(f"  {hit.rank:>2}. {hit.doc_id}  score {hit.score:.4f}{title}")
        text = hit.text.replace("\n", " ")
        click.echo(f"      {text[:SNIPPET]}{'…' if len(text) > SNIPPET else ''}")
        if hit.contributions:
            click.echo(f"      matched: {matched(hit, tokens, exact=result.mode != 'hybrid')}")


def matched(hit, limit: int, exact: bool) -> str:
    """``token w×S=c`` for sparse tokens, ``term (bm25) c`` for BM25 terms, strongest first, and their sum
    (which is the score, except for hybrid's fused scores)."""
    parts = []
    ordered = sorted(hit.contributions, key=lambda c: -c.score)
    for c in ordered[: max(limit, 1)]:
        if c.query_weight is not None:
            parts.append(f"{c.token} {c.query_weight:.2f}×{c.document_weight:.3f}={c.score:.3f}")
        elif c.source == "bm25":
            parts.append(f"{c.token} (bm25) {c.score:.3f}")
        else:  # a seismic segment's query tokens beyond top_n, together
            parts.append(f"{c.token} {c.score:.3f}")
    more = f" … and {len(ordered) - len(parts)} more" if len(ordered) > len(parts) else ""
    total = f"  (sum of all {len(ordered)}: {hit.explained:.4f} = the score)" if exact else ""
    return ", ".join(parts) + more + total
